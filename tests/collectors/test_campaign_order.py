"""The order of work: campaigns of higher priority are leased first (equal ones oldest first), a priority can be
changed while a campaign runs, and a paused campaign leases nothing until it is resumed while its leased jobs run
out as usual; a campaign with no work left cannot be paused."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from latbench.catalog import PredictorAcquirer
from tests.collectors.test_leasing import lease
from tests.support.adaptive import PLAN, latency
from tests.support.served import ARCHS, LEASE_TTL_S, Clock, Harness, Served, measurement


def campaigns_of(jobs: list[dict]) -> list[str]:
    return [job["campaign_id"] for job in jobs]


def test_a_higher_priority_campaign_is_leased_before_older_ones_and_equal_ones_go_oldest_first(collector: Harness):
    sweep = collector.campaign(ARCHS[:3])
    collector.clock.advance(5)
    later = collector.campaign(ARCHS[3:4])
    collector.clock.advance(5)
    urgent = collector.campaign(ARCHS[:2], priority=5)
    agent = collector.agent("pi-1")
    assert campaigns_of(lease(agent, max_jobs=3)) == [urgent, urgent, sweep]
    assert campaigns_of(lease(agent, max_jobs=5)) == [sweep, sweep, later]
    assert collector.status(urgent)["priority"] == 5 and collector.status(sweep)["priority"] == 0


def test_a_running_campaigns_priority_changes_the_order_from_the_next_request(collector: Harness):
    sweep = collector.campaign(ARCHS[:3])
    collector.clock.advance(5)
    urgent = collector.campaign(ARCHS[3:5])
    agent = collector.agent("pi-1")
    assert campaigns_of(lease(agent)) == [sweep]
    changed = collector.admin.post(f"/admin/campaigns/{urgent}/priority", json={"priority": 10})
    assert changed.status_code == 200, changed.text
    assert changed.json()["priority"] == 10 and changed.json()["state"] == "running"
    assert campaigns_of(lease(agent, max_jobs=3)) == [urgent, urgent, sweep]
    listed = {c["campaign_id"]: c["priority"] for c in collector.admin.get("/admin/campaigns").json()}
    assert listed == {sweep: 0, urgent: 10}
    assert collector.admin.post(f"/admin/campaigns/{urgent}/priority", json={"priority": "high"}).status_code == 422
    assert collector.admin.post(f"/admin/campaigns/{urgent}/priority", json={"priority": 10**9}).status_code == 422
    assert collector.admin.post("/admin/campaigns/nope/priority", json={"priority": 1}).status_code == 404
    assert collector.client().post(f"/admin/campaigns/{urgent}/priority", json={"priority": 1}).status_code == 401


def test_a_paused_campaign_leases_nothing_its_leased_jobs_run_out_and_resume_puts_it_back(collector: Harness):
    paused = collector.campaign(ARCHS[:4], devices=["rpi4"])
    collector.clock.advance(1)
    other = collector.campaign(ARCHS[4:5], devices=["rpi4"])
    agent = collector.agent("pi-1", device="rpi4")
    first, second = lease(agent, max_jobs=2)
    response = collector.admin.post(f"/admin/campaigns/{paused}/pause")
    assert response.status_code == 200, response.text
    status = response.json()
    assert status["state"] == "paused" and status["paused_at"] is not None
    assert status["devices"][0]["leased"] == 2 and status["devices"][0]["eta_s"] is None
    [elsewhere] = lease(agent, max_jobs=5)  # other campaigns go on
    assert elsewhere["campaign_id"] == other
    stored = agent.post("/results", json={"results": [measurement(first), measurement(elsewhere)]})
    assert [ack["status"] for ack in stored.json()["acks"]] == ["stored", "stored"]
    collector.clock.advance(LEASE_TTL_S * 3)  # the other lease expires while paused: its job waits, not failed
    assert lease(agent, max_jobs=5) == []
    status = collector.status(paused)
    assert status["state"] == "paused"
    assert (status["devices"][0]["done"], status["devices"][0]["queued"], status["devices"][0]["failed"]) == (1, 3, 0)
    again = collector.admin.post(f"/admin/campaigns/{paused}/pause")
    assert again.status_code == 200 and again.json()["paused_at"] == status["paused_at"]
    resumed = collector.admin.post(f"/admin/campaigns/{paused}/resume")
    assert resumed.status_code == 200 and resumed.json()["state"] == "running" and resumed.json()["paused_at"] is None
    jobs = lease(agent, max_jobs=5)
    assert [j["arch"] for j in jobs] == [second["arch"], *ARCHS[2:4]] and set(campaigns_of(jobs)) == {paused}
    assert collector.admin.post(f"/admin/campaigns/{paused}/resume").json()["state"] == "running"


def test_a_paused_campaign_whose_leased_jobs_all_finish_stays_paused_until_its_queue_is_empty(collector: Harness):
    """Nothing is leased while it is paused, so finishing what was leased leaves it paused, not done; once every
    job has finished it is done, paused or not."""
    campaign = collector.campaign(ARCHS[:2])
    agent = collector.agent("pi-1")
    [first] = lease(agent)
    assert collector.admin.post(f"/admin/campaigns/{campaign}/pause").json()["state"] == "paused"
    agent.post("/results", json={"results": [measurement(first)]})
    assert collector.status(campaign)["state"] == "paused"
    assert collector.admin.post(f"/admin/campaigns/{campaign}/resume").status_code == 200
    [last] = lease(agent)
    assert collector.admin.post(f"/admin/campaigns/{campaign}/pause").json()["state"] == "paused"
    agent.post("/results", json={"results": [measurement(last)]})
    assert collector.status(campaign)["state"] == "done"


def test_a_campaign_with_no_work_left_cannot_be_paused_and_a_cancelled_one_not_resumed(collector: Harness):
    done = collector.campaign(ARCHS[:1])
    agent = collector.agent("pi-1")
    agent.post("/results", json={"results": [measurement(job) for job in lease(agent)]})
    refused = collector.admin.post(f"/admin/campaigns/{done}/pause")
    assert refused.status_code == 409 and refused.json()["code"] == "conflict"
    assert "is done" in refused.json()["message"]
    cancelled = collector.campaign(ARCHS[1:2])
    assert collector.admin.post(f"/admin/campaigns/{cancelled}/pause").status_code == 200
    assert collector.admin.post(f"/admin/campaigns/{cancelled}/cancel").json()["state"] == "cancelled"
    for action in ("pause", "resume"):
        answer = collector.admin.post(f"/admin/campaigns/{cancelled}/{action}")
        assert answer.status_code == 409 and "is cancelled" in answer.json()["message"], answer.text
    assert collector.status(cancelled)["state"] == "cancelled"
    assert collector.admin.post("/admin/campaigns/nope/pause").status_code == 404
    assert collector.client().post(f"/admin/campaigns/{done}/resume").status_code == 401


@pytest.fixture
def adaptive_collector(artifact_cache: Path, tmp_path: Path) -> Iterator[Harness]:
    db_url = f"sqlite:///{tmp_path / 'c.sqlite'}"
    with Served(db_url, artifact_cache, Clock(), acquirer=PredictorAcquirer(), models_dir=tmp_path / "models") as h:
        yield h


@pytest.mark.slow
def test_a_paused_adaptive_campaign_is_stepped_only_once_resumed(adaptive_collector: Harness):
    """A pause spends nothing: the acquisition does not run for it, and it stays paused rather than moving on."""
    collector = adaptive_collector
    campaign = collector.campaign(ARCHS, adaptive=PLAN)
    agent = collector.agent("steady")
    first = lease(agent, max_jobs=8)
    assert collector.admin.post(f"/admin/campaigns/{campaign}/pause").status_code == 200
    agent.post("/results", json={"results": [measurement(j, latency(j["arch"], 0.05)) for j in first]})
    time.sleep(3)  # about three rounds of the adaptive worker
    status = collector.status(campaign)
    assert status["state"] == "paused" and not status["adaptive_devices"], status["adaptive_devices"]
    assert collector.admin.post(f"/admin/campaigns/{campaign}/resume").status_code == 200
    deadline = time.monotonic() + 60
    while not (collector.status(campaign)["adaptive_devices"] or []):
        assert time.monotonic() < deadline, "the resumed campaign was not stepped"
        time.sleep(0.2)
    [device] = collector.status(campaign)["adaptive_devices"]
    assert device["device"] == "steady" and len(device["curve"]) == 1
