"""Adaptive campaigns on a served collector: each device measures the first batch, then what the acquisition picks
from its own results, and stops at its budget or target with its predictor saved; a failed job is never asked
again and counts against the budget."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from latbench.catalog import PredictorAcquirer
from latbench.predictor import Predictor
from latbench.predictor.adaptive import SHORT_OF_TARGET, VERIFY
from latbench.predictor.setups import measured_on, recorded
from tests.support.adaptive import PLAN, adaptive_device, latency, lease, next_jobs
from tests.support.served import ARCHS, Clock, Harness, Served, failure, fingerprint, measurement

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
    # it keeps how the campaign measured, for search --verify to measure the same way
    shown = collector.status(campaign)
    setup = recorded(model)
    assert setup is not None and (setup.runtime, setup.provider, setup.batch, setup.threads, setup.precision) == (
        shown["runtime"],
        shown["provider"],
        shown["batch"],
        shown["threads"],
        "fp32",
    )
    where = measured_on(model.info)  # and the hardware its samples came from, so search measures them only there
    assert where is not None and (where.device, where.device_id) == ("steady", fingerprint("steady"))


def measure_until_stopped(collector: Harness, campaign: str, name: str, timeout_s: float = 240.0) -> dict:
    """Lease and measure the device's jobs (FLOPs-like latencies) as the acquisition queues them, until it stops."""
    agent = collector.agent(name)
    deadline = time.monotonic() + timeout_s
    while True:
        jobs = lease(agent)
        if jobs:
            assert agent.post("/results", json={"results": [measurement(j, latency(j["arch"], 0.05)) for j in jobs]})
        found = {d["device"]: d for d in collector.status(campaign)["adaptive_devices"] or []}
        if found.get(name, {}).get("state") == "stopped":
            return found[name]
        assert time.monotonic() < deadline, f"{name} did not stop: {found.get(name)}"
        time.sleep(0.2)


def test_a_cancelled_adaptive_campaign_is_stepped_no_more(adaptive_collector: Harness):
    """Its next picks would never be leased: the acquisition does not run for it, and adds no architecture."""
    collector = adaptive_collector
    campaign = collector.campaign(ARCHS, adaptive=PLAN)
    agent = collector.agent("steady")
    first = lease(agent)
    assert collector.admin.post(f"/admin/campaigns/{campaign}/cancel").status_code == 200
    assert agent.post("/results", json={"results": [measurement(j, latency(j["arch"], 0.05)) for j in first]})
    time.sleep(4)  # about four rounds of the adaptive worker
    status = collector.status(campaign)
    assert status["state"] == "cancelled"
    assert all(not d["curve"] for d in status["adaptive_devices"] or []), status["adaptive_devices"]
    assert lease(agent) == []


@pytest.mark.parametrize("budget", [15, 11])
def test_a_target_stop_shows_its_check_results_and_says_when_the_budget_left_too_few(
    adaptive_collector: Harness, budget: int
):
    """On a target within reach, the device stops on it after the verification batch (its curve says where the
    checks came in; first-batch architectures that fall in the check set count); a budget with room for only some
    of them stops it unverified, and the caveat says so."""
    collector = adaptive_collector
    campaign = collector.campaign(ARCHS, adaptive={"target_srcc": 0.5, "budget": budget, "batch": 5})
    device = measure_until_stopped(collector, campaign, "pi")
    curve = [(p["results"], p["checks"]) for p in device["curve"]]
    first = curve[0][1]
    checks = min(VERIFY, first + budget - 10)
    assert first < VERIFY and curve == [(5, first), (10, first), (10 + checks - first, checks)]
    assert device["stop"] == "target" and device["model"]
    if checks == VERIFY:
        assert device["caveat"] is None
    else:
        assert f"{checks} of {VERIFY} random check results" in device["caveat"] and "too high" in device["caveat"]


def test_a_device_with_too_few_results_stops_as_failed_and_says_why(adaptive_collector: Harness):
    collector = adaptive_collector
    campaign = collector.campaign(ARCHS[:4], adaptive=PLAN, max_failures=1)
    agent = collector.agent("broken")
    jobs = lease(agent)
    assert agent.post("/results", json={"results": [failure(j) for j in jobs]}).status_code == 200
    stopped = adaptive_device(collector, campaign, "broken")
    assert stopped["stop"] == "failed" and "0 of 4 jobs gave a result" in stopped["error"]
    assert stopped["model"] is None and stopped["caveat"] is None  # no estimate to caveat
    status = collector.status(campaign)  # its one device gave no result: the campaign ends failed, saying why
    assert status["state"] == "failed" and status["error"].startswith("every job failed (4 jobs on 1 device)")


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


def test_campaign_create_warns_when_the_budget_leaves_no_room_to_verify_a_target_stop():
    args = [sys.executable, "-m", "latbench", "campaign", "create", "--adaptive", "--space", "nb201", "--runtime",
            "onnxruntime", "--collector", "http://127.0.0.1:9"]  # fmt: skip
    env = {**os.environ, "COLUMNS": "300"}
    short = subprocess.run([*args, "--budget", "12"], capture_output=True, text=True, timeout=120, env=env)
    assert "warning: a budget of 12 leaves no room for the 5 random check results" in short.stderr
    assert short.returncode == 1 and "Traceback" not in short.stderr  # then nothing listens there
    roomy = subprocess.run([*args, "--budget", "15"], capture_output=True, text=True, timeout=120, env=env)
    assert roomy.returncode == 1 and "warning" not in roomy.stderr
