"""A campaign's results as rows with the columns of ``latbench measure``, plus ``device``, ``agent`` and ``result_id``
(``latbench.results_schema.EXPORT_COLUMNS``), so collected and local results load into the same tables. A
campaign of model files has no resolution or classes of its own (``None``, as ``latbench measure --model``
writes them); its rows give each model's opset (an ONNX file's default, read on upload), the input shapes it
was timed with and, as locally, the first dimension of the first of them as its ``batch``. Agents do not report
``--pin-core`` (they never pin) or ``--wait-idle``, so ``cfg_pin_core`` and ``cfg_wait_idle`` are empty;
``cfg_reference`` says whether the reference probe ran, which it does for every job but a remote device's. A
result's per-operator profile travels
inline in its ``profile`` column (a JSON object); ``write_results`` puts it beside the file it writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from sqlalchemy import Select, and_, select
from sqlalchemy.orm import Session

from latbench import profiles
from latbench.collectors import campaigns
from latbench.collectors.models import AgentRow, ArtifactRow, CampaignArchRow, CampaignRow, DeviceRow, JobRow, ResultRow
from latbench.errors import NotFound
from latbench.results_schema import EXPORT_COLUMNS, MACHINE_FIELDS, RECORDED_SETTINGS, model_batch, result_row
from latbench.spaces import MODEL_SET, get_space

BATCH_ROWS = 500


def _offered_version(agent: AgentRow, runtime: str) -> str:
    return next((str(offer["version"]) for offer in agent.runtimes if offer["name"] == runtime), "")


def _row(
    campaign: CampaignRow,
    arch: str,
    sha256: str | None,
    opset: int,
    result: ResultRow,
    device: DeviceRow,
    agent: AgentRow,
) -> dict[str, Any]:
    space = get_space(campaign.space)
    before, after = result.state_before or {}, result.state_after or {}
    values = {
        "arch": arch,
        "arch_index": space.official_index(arch),
        "space": campaign.space,
        "runtime": campaign.runtime,
        "runtime_version": result.runtime_version or _offered_version(agent, campaign.runtime),
        "provider": campaign.provider,
        "precision": campaigns.precision(campaign),
        "batch": model_batch(result.input_shapes) if campaign.space == MODEL_SET else campaign.batch,
        "threads": campaign.threads,
        "resolution": campaign.resolution or None,
        "classes": campaign.classes or None,
        "opset": opset or None,
        "artifact_sha256": sha256,
        "input_shapes": result.input_shapes,
        "latency_ms": result.median_ms,
        "mean_ms": result.mean_ms,
        "std_ms": result.std_ms,
        "min_ms": result.min_ms,
        "max_ms": result.max_ms,
        "p90_ms": result.p90_ms,
        "p99_ms": result.p99_ms,
        "mad_ms": result.mad_ms,
        "cv": result.cv,
        "runs": result.runs,
        "warmup_runs": result.warmup_runs,
        "attempts": result.attempts,
        "stable": result.stable,
        "flags": ",".join(result.flags),
        "attempt_flags": ";".join(",".join(flags) or "ok" for flags in result.attempt_flags),
        "ref_ratio": result.ref_ratio,
        "wall_s": result.wall_s,
        "load_ms": result.load_ms,
        "first_run_ms": result.first_run_ms,
        "peak_rss_mb": result.peak_rss_mb,
        "idle_waited_s": result.idle_waited_s,
        "idle_load": result.idle_load,
        "profile": profiles.decode(result.profile).as_dict() if result.profile else None,
        "measured_at": result.measured_at.isoformat(timespec="seconds"),
        "device_id": device.fingerprint,
        "latbench_version": result.latbench_version,
        **{f"cfg_{name}": campaign.settings[name] for name, _ in RECORDED_SETTINGS},
        "cfg_optimization": result.optimization,
        "cfg_pin_core": None,
        "cfg_reference": result.ref_ratio is not None,
        "cfg_wait_idle": None,
        **{f"env_{name}": agent.machine.get(name) for name, _ in MACHINE_FIELDS},
        "env_numpy": result.numpy_version,
        "env_load_1m_before": before.get("load_1m"),
        "env_load_1m_after": after.get("load_1m"),
        "env_cpu_freq_mhz_before": before.get("cpu_freq_mhz"),
        "env_cpu_freq_mhz_after": after.get("cpu_freq_mhz"),
        "env_governor": before.get("governor"),
        "env_temperature_c_before": before.get("temperature_c"),
        "env_temperature_c_after": after.get("temperature_c"),
        "env_memory_available_gb": before.get("memory_available_gb"),
        "times_ms": np.frombuffer(result.times_ms or b"", dtype="<f8").tolist(),
        "device": device.name,
        "agent": agent.name,
        "result_id": result.id,
    }
    return result_row(values, EXPORT_COLUMNS)


def _measurements() -> Select[str, str | None, int, ResultRow, DeviceRow, AgentRow]:
    """Each job's finishing measurement with what its row needs (the artifact's opset: a model file's own)."""
    return (
        select(CampaignArchRow.arch, ArtifactRow.sha256, ArtifactRow.opset, ResultRow, DeviceRow, AgentRow)
        .select_from(JobRow)
        .join(ResultRow, ResultRow.id == JobRow.result_id)
        .join(
            CampaignArchRow,
            and_(CampaignArchRow.campaign_id == JobRow.campaign_id, CampaignArchRow.position == JobRow.position),
        )
        .join(ArtifactRow, ArtifactRow.key_digest == CampaignArchRow.artifact_digest)
        .join(DeviceRow, DeviceRow.id == JobRow.device_id)
        .join(AgentRow, AgentRow.id == ResultRow.agent_id)
    )


def rows(session: Session, campaign: CampaignRow) -> Iterator[dict[str, Any]]:
    """The measurement that finished each done job of ``campaign``, by device name then architecture order."""
    query = (
        _measurements()
        .where(JobRow.campaign_id == campaign.id, JobRow.state == "done")
        .order_by(DeviceRow.name, JobRow.position)
        .execution_options(yield_per=BATCH_ROWS)
    )
    for arch, sha256, opset, result, device, agent in session.execute(query):
        yield _row(campaign, arch, sha256, opset, result, device, agent)


def result(session: Session, result_id: str) -> dict[str, Any]:
    """The export row of the stored measurement ``result_id`` (``NotFound`` if no job finished with it)."""
    found = session.execute(
        _measurements()
        .add_columns(CampaignRow)
        .join(CampaignRow, CampaignRow.id == JobRow.campaign_id)
        .where(ResultRow.id == result_id)
    ).first()
    if found is None:
        raise NotFound(f"no stored measurement {result_id!r}")
    arch, sha256, opset, stored, device, agent, campaign = found
    return _row(campaign, arch, sha256, opset, stored, device, agent)
