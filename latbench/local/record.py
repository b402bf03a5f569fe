"""A local run's result rows: what each column records of the measurement, the engine and the machine that timed
it, the run's ``cfg_*`` settings that make its identity, and the results file rows are appended to.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

import latbench
from latbench.agents.environment import MachineInfo
from latbench.agents.measure import Measurement, TimingSettings
from latbench.agents.quiet import QuietPolicy
from latbench.agents.runtimes import Runtime
from latbench.benches import Bench, Engine, LocalBench, RemoteBench, optimization
from latbench.resultfile import ResultsFile
from latbench.results_schema import RECORDED_SETTINGS, result_row

if TYPE_CHECKING:
    from latbench.agents.remote.runner import RemoteRunner


def row_of(
    subject: Mapping[str, object],
    artifact_sha256: str,
    runtime: Engine,
    identity: dict[str, object],
    info: MachineInfo,
    settings: TimingSettings,
    m: Measurement,
    numpy_version: str | None = None,
) -> dict[str, object]:
    """A result row; ``subject`` holds what was measured: ``arch``, ``arch_index``, ``space``, ``batch``,
    ``resolution``, ``classes``, ``opset`` and ``input_shapes``. ``runtime`` is the engine that timed it, ``info``
    and ``numpy_version`` (default: this process's) describe the machine it ran on."""
    before, after = m.state_before, m.state_after
    assert before is not None and after is not None
    values = {
        **subject,
        "runtime": identity["runtime"],
        "runtime_version": runtime.version(),
        "provider": identity["provider"],
        "precision": identity.get("precision"),
        "threads": identity["threads"],
        "artifact_sha256": artifact_sha256,
        "latency_ms": m.stats.median_ms,
        "mean_ms": m.stats.mean_ms,
        "std_ms": m.stats.std_ms,
        "min_ms": m.stats.min_ms,
        "max_ms": m.stats.max_ms,
        "p90_ms": m.stats.p90_ms,
        "p99_ms": m.stats.p99_ms,
        "mad_ms": m.stats.mad_ms,
        "cv": m.stats.cv,
        "runs": m.stats.runs,
        "warmup_runs": m.warmup_runs,
        "attempts": m.attempts,
        "stable": m.stable,
        "flags": ",".join(m.flags),
        "attempt_flags": ";".join(",".join(f) or "ok" for f in m.attempt_flags),
        "ref_ratio": m.ref_ratio,
        "wall_s": m.wall_s,
        "load_ms": m.load_ms,
        "first_run_ms": m.first_run_ms,
        "peak_rss_mb": m.peak_rss_mb,
        "idle_waited_s": m.idle_waited_s,
        "idle_load": m.idle_load,
        "profile": m.profile.as_dict() if m.profile else None,
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device_id": identity["device_id"],
        "latbench_version": latbench.__version__,
        **{k: v for k, v in identity.items() if k.startswith("cfg_")},
        "cfg_optimization": optimization(runtime),
        **{f"env_{k}": v for k, v in info.snapshot().items()},
        "env_numpy": np.__version__ if numpy_version is None else numpy_version,
        "env_load_1m_before": before.load_1m,
        "env_load_1m_after": after.load_1m,
        "env_cpu_freq_mhz_before": before.cpu_freq_mhz,
        "env_cpu_freq_mhz_after": after.cpu_freq_mhz,
        "env_governor": before.governor,
        "env_temperature_c_before": before.temperature_c,
        "env_temperature_c_after": after.temperature_c,
        "env_memory_available_gb": before.memory_available_gb,
        "times_ms": [round(t / 1e6, 6) for t in m.times_ns.tolist()],
    }
    return result_row(values)


def _pinned_core() -> int | None:
    """The one core this process may run on (``--pin-core``, ``taskset``), where it is confined to one of several."""
    if not hasattr(os, "sched_getaffinity") or (os.cpu_count() or 1) < 2:
        return None
    cores = os.sched_getaffinity(0)
    return next(iter(cores)) if len(cores) == 1 else None


def _timing_columns(settings: TimingSettings) -> dict[str, object]:
    return {f"cfg_{name}": getattr(settings, name) for name, _ in RECORDED_SETTINGS}


def run_settings(
    settings: TimingSettings, engine: Engine, reference: bool, quiet: QuietPolicy | None
) -> dict[str, object]:
    """The ``cfg_*`` columns of a run's rows on this machine: part of its identity, so a results file resumes only
    with them."""
    return {
        **_timing_columns(settings),
        "cfg_optimization": optimization(engine),
        "cfg_pin_core": _pinned_core(),
        "cfg_reference": reference,
        "cfg_wait_idle": quiet is not None,
    }


def open_bench(
    runtime_cls: type[Runtime],
    threads: int,
    provider: str,
    settings: TimingSettings,
    reference: bool,
    quiet: QuietPolicy | None,
    remote: RemoteRunner | None,
) -> tuple[Bench, dict[str, object]]:
    """Where a run times its artifacts, and the ``cfg_*`` columns that gives its rows. A remote device is neither
    pinned, probed nor waited for from here, and its engine says its optimisation with its first result
    (``keep``)."""
    if remote is not None:
        bench: Bench = RemoteBench(remote, runtime_cls, threads, provider, settings)
        return bench, {**_timing_columns(settings), "cfg_pin_core": None, "cfg_reference": False,
                       "cfg_wait_idle": False}  # fmt: skip
    local = LocalBench(runtime_cls, threads, provider, settings, reference, quiet)
    return local, run_settings(settings, local.engine, reference, quiet)


def results_file(out: str | Path | None, identity: dict[str, object]) -> ResultsFile | None:
    """The results file a run appends to, checked to hold results of the same settings and device."""
    if out is None:
        return None
    results = ResultsFile(out)
    results.check_compatible(identity)
    return results


def keep(results: ResultsFile | None, identity: dict[str, object], row: dict[str, object]) -> None:
    """Append ``row`` to ``results``. A remote device's engine says its optimisation with its first row: part of
    the run's identity too, checked against the file before that row is written."""
    if results is None:
        return
    if "cfg_optimization" not in identity:
        identity["cfg_optimization"] = row["cfg_optimization"]
        results.check_compatible(identity)
    results.append(row)
