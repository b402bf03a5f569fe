"""An adaptive campaign end to end: a real collector steps the acquisition after each batch that two real agents
measure, stops the device, and saves its predictor among the collector's models."""

from __future__ import annotations

import json

import numpy as np
import pytest

from latbench.predictor import Predictor
from tests.support.ports import free_port
from tests.support.processes import Agent, Collector, totals, wait_for

pytestmark = pytest.mark.slow  # real collector and agent processes

FAST = ["--min-runs", "5", "--min-time", "0.02", "--warmup-time", "0.01", "--attempts", "1"]
"""Short timings, measured once however unstable (on a busy machine re-measuring tripled each job's time)."""


def test_an_adaptive_campaign_measures_in_batches_and_stops_with_a_model(tmp_path, artifact_cache):
    collector = Collector(f"sqlite:///{tmp_path / 'store.sqlite'}", tmp_path / "collector", free_port(),
                          lease_ttl_s=10, artifacts=artifact_cache).start()  # fmt: skip
    agents: list[Agent] = []
    try:
        token = collector.cli("token", "create", "--name", "adaptive")
        campaign = collector.cli("campaign", "create", "--adaptive", "--space", "nb201", "--runtime", "onnxruntime",
                                 "--target-srcc", "0.999", "--budget", "8", "--adaptive-batch", "4", *FAST)  # fmt: skip
        agents = [Agent(collector, token, f"agent-{i}", tmp_path / f"agent-{i}", "--max-jobs", "2") for i in (1, 2)]
        wait_for(lambda: collector.status(campaign)["state"] == "done", 300, "the adaptive campaign to finish")
    finally:
        codes = [a.stop() for a in agents]
        status = json.loads(collector.cli("campaign", "status", campaign, "--json"))
        shown = collector.cli("campaign", "status", campaign)
        collector.stop()
    assert codes == [0, 0], [a.log.read_text()[-2000:] for a in agents]
    assert status["adaptive"] == {"target_srcc": 0.999, "budget": 8, "batch": 4}
    [device] = status["adaptive_devices"]
    assert device["state"] == "stopped" and device["stop"] == "budget", device  # under 10 results: no target stop
    results = [p["results"] for p in device["curve"]]
    assert results[0] == 4 and results == sorted(results) and results[-1] <= 8
    assert all(-1 <= p["srcc"] <= 1 and p["srcc_std"] >= 0 for p in device["curve"])
    done = totals(status)["done"]
    assert done == results[-1]
    assert done == 8 and len(results) == 2
    assert device["caveat"] and "not reached" in device["caveat"]
    model = Predictor.load(tmp_path / "collector" / "models" / device["model"])
    assert model.target == device["device"] and model.space == "nb201"
    assert np.all(
        model.predict(["|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|none~1|skip_connect~2|"]) > 0
    )
    assert "learning curve" in shown and device["device"] in shown
