"""End to end on loopback: a real collector process and real agent processes run campaigns, through faults."""

from __future__ import annotations

import csv
import json
import signal
import time
from pathlib import Path

import pytest

from tests.support.ports import free_port
from tests.support.processes import Agent, Collector, children, totals, wait_for

pytestmark = pytest.mark.slow  # real collector and agent processes

FAST = ["--min-runs", "10", "--min-time", "0.05", "--warmup-time", "0.02", "--attempts", "1"]
"""Short timings, measured once however unstable: on a busy machine re-measuring tripled each job's time, and
these tests are about the fleet, not the stability checks (tests/agents/test_measure.py)."""


@pytest.fixture
def collector(db_url, tmp_path, artifact_cache):
    c = Collector(db_url, tmp_path / "collector", free_port(), lease_ttl_s=4, artifacts=artifact_cache).start()
    yield c
    c.stop()


def exported(collector: Collector, campaign: str, out: Path) -> list[dict[str, str]]:
    collector.cli("results", "export", "--campaign", campaign, "--out", str(out))
    with out.open(newline="") as f:
        return list(csv.DictReader(f))


def create_campaign(collector: Collector, n: int, seed: int, settings: list[str] = FAST) -> tuple[str, str]:
    token = collector.cli("token", "create", "--name", "e2e")
    campaign = collector.cli("campaign", "create", "--space", "nb201", "--samples", str(n), "--seed", str(seed),
                             "--runtime", "onnxruntime", *settings)  # fmt: skip
    return token, campaign


def test_two_agents_complete_a_campaign_once_per_architecture(collector, tmp_path):
    token, campaign = create_campaign(collector, 30, seed=11)
    agents = [Agent(collector, token, f"agent-{i}", tmp_path / f"agent-{i}", "--max-jobs", "2") for i in (1, 2)]
    try:
        wait_for(lambda: totals(collector.status(campaign))["done"] == 30, 240, "30 results")
    finally:
        codes = [a.stop() for a in agents]
    assert codes == [0, 0], [a.log.read_text()[-2000:] for a in agents]
    rows = exported(collector, campaign, tmp_path / "out.csv")
    assert len(rows) == 30
    assert len({r["arch"] for r in rows}) == 30
    assert {r["agent"] for r in rows} <= {"agent-1", "agent-2"}
    assert len({r["device"] for r in rows}) == 1
    assert all(float(r["latency_ms"]) > 0 for r in rows)
    check_management_views(collector, campaign)


def check_management_views(collector: Collector, campaign: str) -> None:
    """What an operator sees once the campaign is done: status (watch returns), list, devices."""
    status = json.loads(collector.cli("campaign", "status", campaign, "--json"))
    assert status["state"] == "done" and [d["done"] for d in status["devices"]] == [30]
    collector.cli("campaign", "status", campaign, "--watch", "--interval", "0.1")  # returns: the campaign is done
    assert campaign in collector.cli("campaign", "status", campaign)
    listed = json.loads(collector.cli("campaign", "list", "--json"))
    assert [c["campaign_id"] for c in listed] == [campaign]
    devices = json.loads(collector.cli("devices", "--json"))
    assert len(devices) == 1 and sorted(devices[0]["agents"]) == ["agent-1", "agent-2"]
    assert devices[0]["runtimes"] == ["onnxruntime"]


def test_a_killed_agent_leases_expire_and_another_finishes(collector, tmp_path):
    # Jobs of about a second each: when its first result lands, the doomed agent still holds three leases.
    token, campaign = create_campaign(collector, 12, seed=12, settings=["--min-runs", "10", "--min-time", "1.0"])
    doomed = Agent(collector, token, "doomed", tmp_path / "doomed", "--max-jobs", "4", "--push-interval", "0")
    wait_for(lambda: totals(collector.status(campaign))["done"] >= 1, 180, "a first result")
    # Read before the kill: a status read after it (a CLI start-up of seconds on a busy machine) can come after
    # the 4 s lease expiry this test is about.
    held = totals(collector.status(campaign))["leased"]
    doomed.stop(signal.SIGKILL)
    assert held >= 1
    survivor = Agent(collector, token, "survivor", tmp_path / "survivor", "--max-jobs", "2")
    try:
        wait_for(lambda: totals(collector.status(campaign))["done"] == 12, 240, "all 12 results")
    finally:
        assert survivor.stop() == 0
    rows = exported(collector, campaign, tmp_path / "out.csv")
    assert sorted(r["arch"] for r in rows) == sorted({r["arch"] for r in rows})
    assert len(rows) == 12
    assert "survivor" in {r["agent"] for r in rows}


def test_a_collector_outage_loses_nothing(collector, tmp_path):
    token, campaign = create_campaign(collector, 16, seed=13)
    agent = Agent(collector, token, "steady", tmp_path / "steady", "--max-jobs", "8")
    try:
        wait_for(lambda: totals(collector.status(campaign))["done"] >= 2, 180, "first results")
        collector.stop(signal.SIGKILL)
        time.sleep(4)  # the agent keeps measuring its leased jobs and spools what it cannot push
        collector.start()
        wait_for(lambda: totals(collector.status(campaign))["done"] == 16, 240, "all 16 results after the outage")
    finally:
        assert agent.stop() == 0
    rows = exported(collector, campaign, tmp_path / "out.csv")
    assert len(rows) == 16 == len({r["arch"] for r in rows})


def worker_pids(collector: Collector) -> list[int]:
    """The collector's worker processes (its children running ``collector serve --join-port``)."""
    assert collector.proc is not None
    return [pid for pid in children(collector.proc.pid) if b"--join-port" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def test_a_collector_with_worker_processes_completes_a_campaign_once_and_stops_them(db_url, tmp_path, artifact_cache):
    collector = Collector(db_url, tmp_path / "collector", free_port(), 4, artifact_cache, "--workers", "3")
    collector.start()
    try:
        assert len(worker_pids(collector)) == 2
        token, campaign = create_campaign(collector, 12, seed=14)
        agents = [Agent(collector, token, f"agent-{i}", tmp_path / f"agent-{i}", "--max-jobs", "2") for i in (1, 2)]
        try:
            wait_for(lambda: totals(collector.status(campaign))["done"] == 12, 240, "12 results")
        finally:
            codes = [a.stop() for a in agents]
        assert codes == [0, 0], [a.log.read_text()[-2000:] for a in agents]
        rows = exported(collector, campaign, tmp_path / "out.csv")
        assert len(rows) == 12 == len({r["arch"] for r in rows})
        workers = worker_pids(collector)
    finally:
        assert collector.stop() == 0, collector.log.read_text()[-3000:]
    assert all(not Path(f"/proc/{pid}").exists() for pid in workers)
