"""A real profiled measurement pushed to a collector as an agent reports it: ONNX Runtime times a model and
profiles it after the timed runs, and the agent's own report carries the result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from latbench.agents.measure import TimingSettings, load_cold, time_model
from latbench.agents.reports import result_item
from latbench.agents.runtimes.onnxruntime import OnnxRuntime
from latbench.protocol import JobSpec

PROFILED = TimingSettings(warmup_runs=2, warmup_time_s=0.0, min_runs=10, min_time_s=0.02, profile_runs=3)
"""Short timing, three profiled runs."""


def push_profiled(agent: httpx.Client, job: dict[str, Any], model: Path) -> str:
    """Measure ``model`` with a profile for the leased ``job``, push it with ``agent``; the stored result's id."""
    engine = OnnxRuntime()
    try:
        measured = time_model(engine, PROFILED, cold=load_cold(engine, model))
        item = result_item(JobSpec.model_validate(job), measured, engine)
    finally:
        engine.close()
    pushed = agent.post("/results", json={"results": [item.model_dump(mode="json")]})
    assert pushed.status_code == 200 and pushed.json()["acks"][0]["status"] == "stored", pushed.text
    return str(item.result_id)
