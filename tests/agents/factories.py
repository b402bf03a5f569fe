"""Valid protocol messages for agent tests, built in one place."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from latbench.agents.environment import machine_info
from latbench.protocol import (
    EnrollRequest,
    JobSpec,
    LatencyStatsModel,
    MachineInfoModel,
    MeasurementSettings,
    ResultItem,
    RuntimeOffer,
)


def result(job_id: str = "job-1", **fields: Any) -> ResultItem:
    """A small, valid measured result with a fresh id."""
    stats = LatencyStatsModel(
        median_ms=1.1,
        mean_ms=1.1,
        std_ms=0.1,
        min_ms=1.0,
        max_ms=1.2,
        p90_ms=1.18,
        p99_ms=1.2,
        mad_ms=0.1,
        cv=0.09,
        runs=3,
    )
    values: dict[str, Any] = {
        "result_id": uuid.uuid4(),
        "job_id": job_id,
        "lease_id": f"lease-{job_id}",
        "stats": stats,
        "times_ms": [1.0, 1.1, 1.2],
        "measured_at": datetime.now(timezone.utc),
    }
    return ResultItem(**{**values, **fields})


def job(
    job_id: str,
    artifact_sha256: str,
    runtime: str = "onnxruntime",
    reference_sha256: str | None = None,
    min_time_s: float = 0.02,
    artifact_bytes: int = 2**24,
) -> JobSpec:
    """A job of a test model (lease ``lease-<job_id>``, declared at most ``artifact_bytes`` long), measured for
    about ``min_time_s``."""
    return JobSpec(
        job_id=job_id,
        lease_id=f"lease-{job_id}",
        campaign_id="c-1",
        space="nb201",
        arch=f"arch-{job_id}",
        arch_index=None,
        runtime=runtime,
        provider="cpu",
        batch=1,
        threads=1,
        resolution=32,
        classes=8,
        opset=17,
        artifact_sha256=artifact_sha256,
        artifact_bytes=artifact_bytes,
        reference_sha256=reference_sha256,
        settings=MeasurementSettings(
            warmup_runs=2, warmup_time_s=0.0, min_runs=10, min_time_s=min_time_s, max_attempts=1
        ),
        attempt=1,
        expires_at=datetime.now(timezone.utc) + timedelta(minutes=5),
    )


def enroll_request(name: str = "a1") -> EnrollRequest:
    """An enrollment request of this machine, as an agent sends it."""
    info = machine_info()
    return EnrollRequest(name=name, fingerprint=info.fingerprint(),
                         machine=MachineInfoModel.model_validate(info.as_dict()),
                         runtimes=[RuntimeOffer(name="onnxruntime", version="1", providers=["cpu"])])  # fmt: skip
