"""A stuck agent is told apart from a busy one: campaign status shows per device whether it is online, its last
result and its oldest lease, and gives no ETA for a device that is not online; and a lease held far longer than
its jobs could take a healthy agent is no longer renewed, so a wedged agent's jobs go back to the queue."""

from __future__ import annotations

from datetime import datetime

import pytest

from latbench.collectors.leasing import GRANT_MARGIN_S, job_bound_s
from latbench.protocol import MeasurementSettings
from tests.collectors.test_leasing import lease
from tests.support.served import ARCHS, LEASE_TTL_S, Harness, measurement

SHORT = {"max_time_s": 1.0, "min_time_s": 0.5, "max_attempts": 1}
LONG = {"max_time_s": 600.0, "max_attempts": 3}


def beat(agent, *jobs: dict) -> dict:
    response = agent.post("/heartbeat", json={"lease_ids": [job["lease_id"] for job in jobs]})
    assert response.status_code == 200, response.text
    return response.json()


def at(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def test_the_job_bound_is_generous_for_every_measurement_settings_allow():
    """An attempt warms up and times for at most about twice ``max_time_s``; the bound is twice that again per
    attempt (a profile counting as one more), plus ten minutes for loading, idle waits and probes."""
    default = MeasurementSettings()
    assert job_bound_s(default) == 4 * 3 * 30 + 600
    profiled = MeasurementSettings(max_time_s=3600, max_attempts=20, cooldown_s=600, profile_runs=100)
    assert job_bound_s(profiled) == 4 * 21 * (3600 + 600) + 600


def test_a_wedged_agents_lease_is_renewed_no_longer_than_its_job_could_take(collector: Harness):
    collector.campaign(ARCHS[:1], settings=SHORT)
    wedged, healthy = collector.agent("wedged", device="dev"), collector.agent("healthy", device="dev")
    [job] = lease(wedged)
    limit = GRANT_MARGIN_S + job_bound_s(MeasurementSettings(**SHORT))
    collector.clock.advance(limit - 10)
    assert beat(wedged, job)["renewed"] == [job["lease_id"]]
    collector.clock.advance(20)
    answer = beat(wedged, job)
    assert answer["renewed"] == [] and answer["lost"] == [job["lease_id"]]
    assert lease(healthy) == []  # the lease renewed last still runs its course
    collector.clock.advance(LEASE_TTL_S + 1)
    [again] = lease(healthy)
    assert again["job_id"] == job["job_id"] and again["attempt"] == 2


def test_a_healthy_agent_keeps_the_last_jobs_of_a_long_lease_request(collector: Harness):
    """Jobs leased together are measured one after another: the last may be held for the time of them all."""
    campaign = collector.campaign(ARCHS[:3], settings=LONG)
    agent = collector.agent("patient", device="dev")
    first, second, third = lease(agent, max_jobs=3)
    bound = job_bound_s(MeasurementSettings(**LONG))
    assert 2 * bound > bound + GRANT_MARGIN_S  # the second job outlives a bound of its own
    for finished, held in ((first, [second, third]), (second, [third])):
        collector.clock.advance(bound - 60)
        assert beat(agent, finished, *held)["lost"] == []
        assert agent.post("/results", json={"results": [measurement(finished)]}).status_code == 200
    collector.clock.advance(bound - 60)
    assert beat(agent, third)["renewed"] == [third["lease_id"]]
    collector.clock.advance(GRANT_MARGIN_S + 3 * 60 + 1)
    assert beat(agent, third)["lost"] == [third["lease_id"]]
    assert collector.status(campaign)["devices"][0]["done"] == 2


def test_status_shows_each_devices_activity_and_no_eta_for_one_not_online(collector: Harness):
    campaign = collector.campaign(ARCHS[:4])
    gone, busy = collector.agent("gone", device="dev-gone"), collector.agent("busy", device="dev-busy")
    leased_at = collector.clock.now
    gone_jobs, busy_jobs = lease(gone, max_jobs=2), lease(busy, max_jobs=2)
    collector.clock.advance(20)
    finished_at = collector.clock.now
    for agent, jobs in ((gone, gone_jobs), (busy, busy_jobs)):
        assert agent.post("/results", json={"results": [measurement(jobs[0])]}).status_code == 200
    devices = {d["device"]: d for d in collector.status(campaign)["devices"]}
    for device in devices.values():
        assert device["online"] is True and device["eta_s"] is not None
        assert at(device["last_result_at"]) == finished_at and at(device["leased_since"]) == leased_at
    collector.clock.advance(LEASE_TTL_S + 10)  # dev-gone's agent is silent, dev-busy's heartbeats
    assert beat(busy, busy_jobs[1])["renewed"] == [busy_jobs[1]["lease_id"]]
    devices = {d["device"]: d for d in collector.status(campaign)["devices"]}
    assert devices["dev-gone"]["online"] is False and devices["dev-gone"]["eta_s"] is None
    assert devices["dev-gone"]["rate_per_min"] is not None and devices["dev-gone"]["leased_since"] is None
    assert devices["dev-busy"]["online"] is True and devices["dev-busy"]["eta_s"] is not None
    assert at(devices["dev-busy"]["leased_since"]) == leased_at


@pytest.mark.slow
def test_campaign_status_shows_online_last_result_and_a_blank_eta_with_its_reason(served: Harness):
    campaign = served.campaign(ARCHS[:3])
    agent = served.agent("pi-1", device="rpi4")
    jobs = lease(agent, max_jobs=2)
    agent.post("/results", json={"results": [measurement(jobs[0])]})
    served.clock.advance(LEASE_TTL_S + 10)
    shown = served.run_cli("campaign", "status", campaign)
    assert shown.returncode == 0, shown.stderr
    [row] = [line for line in shown.stdout.splitlines() if "rpi4" in line]
    cells = [cell.strip() for cell in row.split("│")[1:-1]]
    assert cells[:2] == ["rpi4", "no"] and cells[2].endswith("ago") and cells[-1] == "", cells
    assert "no eta for a device that is not online" in " ".join(shown.stdout.split())
    as_json = served.run_cli("campaign", "status", campaign, "--json")
    assert '"online":false' in as_json.stdout and '"last_result_at":' in as_json.stdout
