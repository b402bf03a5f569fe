"""Adaptive campaigns on a served collector: each device measures the first batch, then what the acquisition picks
from its own results, and stops at its budget or target with its predictor saved; a failed job is never asked
again and counts against the budget."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from latbench.catalog import PredictorAcquirer
from latbench.collectors.adaptive import SHORT_OF_TARGET
from latbench.predictor import Predictor
from tests.support.adaptive import PLAN, adaptive_device, latency, lease, next_jobs
from tests.support.served import ARCHS, Clock, Harness, Served, failure, measurement

pytestmark = pytest.mark.slow  # the acquisition and new artifacts take seconds


@pytest.fixture
def adaptive_collector(db_url: str, artifact_cache: Path, tmp_path: Path) -> Iterator[Harness]:
    with Served(db_url, artifact_cache, Clock(), acquirer=PredictorAcquirer(), models_dir=tmp_path / "models") as h:
        yield h


def test_each_device_steps_from_its_own_results_and_stops_at_its_budget(adaptive_collector: Harness, tmp_path):
    collector = adaptive_collector
    campaign = collector.campaign(ARCHS, adaptive=PLAN, max_failures=1)
    steady, flaky = collector.agent("steady"), collector.agent("flaky")
    first = lease(steady)
    assert [j["arch"] for j in first] == ARCHS
    collector_ack = steady.post("/results", json={"results": [measurement(j, latency(j["arch"], 0.05)) for j in first]})
    assert collector_ack.status_code == 200
    flaky_first = lease(flaky)
    broken = flaky_first[0]["arch"]
    pushed = [failure(flaky_first[0])] + [measurement(j, latency(j["arch"], 0.02)) for j in flaky_first[1:]]
    assert flaky.post("/results", json={"results": pushed}).status_code == 200

    second = next_jobs(steady, 3)
    assert len(second) == 3 and not {j["arch"] for j in second} & set(ARCHS)
    assert steady.post("/results", json={"results": [measurement(j, latency(j["arch"], 0.05)) for j in second]})
    flaky_second = next_jobs(flaky, 3)
    assert len(flaky_second) == 3 and broken not in {j["arch"] for j in flaky_second}
    assert flaky.post("/results", json={"results": [measurement(j, latency(j["arch"], 0.02)) for j in flaky_second]})

    done = adaptive_device(collector, campaign, "steady")
    assert done["stop"] == "budget" and [p["results"] for p in done["curve"]] == [5, 8]
    assert done["caveat"] == SHORT_OF_TARGET  # short of its target: the estimate is rough, and the status says so
    assert all(p["srcc_std"] >= 0 and -1 <= p["srcc"] <= 1 for p in done["curve"])
    stopped = adaptive_device(collector, campaign, "flaky")
    assert stopped["stop"] == "budget" and [p["results"] for p in stopped["curve"]] == [4, 7]
    status = collector.status(campaign)
    assert status["state"] == "done"
    assert {d["device"]: (d["done"], d["failed"], d["total"]) for d in status["devices"]} == {
        "steady": (8, 0, 8),
        "flaky": (7, 1, 8),
    }
    assert lease(steady) == [] and lease(flaky) == []
    model = Predictor.load(tmp_path / "models" / done["model"])
    assert model.target == "steady" and model.space == "nb201"
    assert model.predict(ARCHS[:2]).shape == (2,)


def test_a_device_with_too_few_results_stops_as_failed_and_says_why(adaptive_collector: Harness):
    collector = adaptive_collector
    campaign = collector.campaign(ARCHS[:4], adaptive=PLAN, max_failures=1)
    agent = collector.agent("broken")
    jobs = lease(agent)
    assert agent.post("/results", json={"results": [failure(j) for j in jobs]}).status_code == 200
    stopped = adaptive_device(collector, campaign, "broken")
    assert stopped["stop"] == "failed" and "0 of 4 jobs gave a result" in stopped["error"]
    assert stopped["model"] is None and stopped["caveat"] is None  # no estimate to caveat
    assert collector.status(campaign)["state"] == "done"


def test_an_adaptive_campaign_gives_its_first_batch_as_archs(collector: Harness):
    response = collector.admin.post("/admin/campaigns", json={"space": "nb201", "samples": 5, "adaptive": PLAN})
    assert response.status_code == 422
    assert "first batch as archs" in response.json()["message"]


@pytest.mark.parametrize(
    ("options", "code", "message"),
    [
        (["--budget", "2"], 1, "the budget must be at least the batch"),
        (["--target-srcc", "1.5"], 1, "the target SRCC must be in (0, 1]"),
        (["--samples", "3"], 2, "picks its own architectures"),
    ],
)
def test_campaign_create_refuses_an_adaptive_plan_that_cannot_run(options: list[str], code: int, message: str):
    done = subprocess.run(
        [sys.executable, "-m", "latbench", "campaign", "create", "--adaptive", "--space", "nb201", "--runtime",
         "onnxruntime", *options, "--collector", "http://127.0.0.1:9"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert done.returncode == code
    assert message in done.stderr and "Traceback" not in done.stderr
