"""What an agent tells the collector: the runtimes it offers, and each job's measurement or error as a result."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone

import numpy as np

import latbench
from latbench.agents.environment import MachineState
from latbench.agents.measure import Measurement
from latbench.agents.modelfile import format_shapes
from latbench.agents.runtimes import Runtime, get_runtime
from latbench.protocol import JobSpec, LatencyStatsModel, MachineStateModel, OpProfileModel, ResultItem, RuntimeOffer
from latbench.spaces import MODEL_SET

MAX_ERROR_CHARS = 4096


def runtime_offer(name: str) -> RuntimeOffer:
    """What this machine offers of runtime ``name``: its version and the providers usable here."""
    runtime = get_runtime(name)
    return RuntimeOffer(name=name, version=runtime.version()[:64], providers=runtime.providers())


def _state(state: MachineState | None) -> MachineStateModel | None:
    return MachineStateModel.model_validate(state.as_dict()) if state is not None else None


def result_item(job: JobSpec, m: Measurement, runtime: Runtime, numpy_version: str | None = None) -> ResultItem:
    """The result the collector stores for a measurement of ``job`` made with ``runtime``; its fresh id makes a
    re-push harmless. A model file's result says the shapes it was timed with. ``numpy_version`` is that of the
    process that measured, where it is not this one (a remote device's; "" for none)."""
    return ResultItem(
        result_id=uuid.uuid4(),
        job_id=job.job_id,
        lease_id=job.lease_id,
        stats=LatencyStatsModel.model_validate(m.stats.as_dict()),
        times_ms=[t / 1e6 for t in m.times_ns.tolist()],
        warmup_runs=m.warmup_runs,
        attempts=m.attempts,
        stable=m.stable,
        flags=m.flags,
        attempt_flags=m.attempt_flags,
        ref_ratio=m.ref_ratio,
        wall_s=m.wall_s,
        measured_at=datetime.now(timezone.utc),
        runtime_version=runtime.version()[:64],
        optimization=str(runtime.settings().get("optimization", ""))[:64],
        latbench_version=latbench.__version__,
        numpy_version=np.__version__ if numpy_version is None else numpy_version,
        input_shapes=(format_shapes(getattr(runtime, "input_shapes", {})) or None) if job.space == MODEL_SET else None,
        state_before=_state(m.state_before),
        state_after=_state(m.state_after),
        load_ms=m.load_ms,
        first_run_ms=m.first_run_ms,
        peak_rss_mb=m.peak_rss_mb,
        idle_waited_s=m.idle_waited_s,
        idle_load=m.idle_load,
        profile=OpProfileModel.model_validate(m.profile.as_dict()) if m.profile else None,
    )


def error_item(job: JobSpec, message: str, final: bool = False) -> ResultItem:
    """The result of a job that could not be measured here; the collector counts it as a failed attempt, or
    fails the job at once where ``final`` says another attempt on this device would fail the same way. A model
    file's error names it as the campaign does (the user's file name), not as the download it was loaded from."""
    if job.space == MODEL_SET:
        # the download's path (a runtime's "cannot load /.../artifacts/<sha256>.onnx") or name, as the user's file
        message = re.sub(rf"[^\s'\"]*{re.escape(job.artifact_sha256)}(\.[\w.]+)?", job.arch, message)
        if job.arch not in message:
            message = f"model {job.arch}: {message}"
    return refusal_item(job.job_id, job.lease_id, message, final)


def refusal_item(job_id: str, lease_id: str, message: str, final: bool = False) -> ResultItem:
    """An error result for the job and lease named, which need not be readable as a ``JobSpec``."""
    return ResultItem(
        result_id=uuid.uuid4(),
        job_id=job_id,
        lease_id=lease_id,
        error=message[:MAX_ERROR_CHARS],
        final=final,
        measured_at=datetime.now(timezone.utc),
    )
