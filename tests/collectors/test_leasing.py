"""Leasing: each job goes to one agent at a time, comes back when its lease expires, and fails at the limit."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
import sqlalchemy as sa

from latbench.collectors.leasing import JOBS_PER_REQUEST
from latbench.collectors.models import JobRow
from latbench.protocol import MAX_JOBS_PER_LEASE
from tests.support.served import ARCHS, LEASE_TTL_S, Harness, failure, measurement


def lease(agent, max_jobs: int = 1, **fields) -> list[dict]:
    response = agent.post("/leases", json={"max_jobs": max_jobs, **fields})
    assert response.status_code == 200, response.text
    return response.json()["jobs"]


def test_an_agent_gets_up_to_k_jobs_in_architecture_order_with_what_it_needs(collector: Harness):
    campaign = collector.campaign(ARCHS[:3], settings={"min_runs": 20}, threads=2)
    agent = collector.agent("pi-1")
    jobs = lease(agent, max_jobs=2)
    assert [j["arch"] for j in jobs] == ARCHS[:2]
    job = jobs[0]
    assert job["campaign_id"] == campaign and job["attempt"] == 1 and job["threads"] == 2
    assert job["settings"]["min_runs"] == 20 and job["resolution"] == 32 and job["classes"] == 10
    assert job["arch_index"] is not None and job["reference_sha256"] and job["artifact_bytes"] > 0
    assert [j["arch"] for j in lease(agent, max_jobs=5)] == ARCHS[2:3]
    response = agent.post("/leases", json={})
    assert response.json() == {"jobs": [], "retry_after_s": 2.0}


def test_artifacts_download_by_sha256_and_hash_to_it(collector: Harness):
    import hashlib

    collector.campaign(ARCHS[:1])
    agent = collector.agent("pi-1")
    [job] = lease(agent)
    for sha in (job["artifact_sha256"], job["reference_sha256"]):
        response = agent.get(f"/artifacts/{sha}")
        assert response.status_code == 200 and response.headers["content-type"] == "application/octet-stream"
        assert hashlib.sha256(response.content).hexdigest() == sha
    assert agent.get(f"/artifacts/{'0' * 64}").status_code == 404
    assert agent.get("/artifacts/not-a-hash").status_code == 422
    assert collector.client().get(f"/artifacts/{job['artifact_sha256']}").status_code == 401


def test_campaigns_reach_only_the_devices_and_runtimes_they_name(collector: Harness):
    collector.campaign(ARCHS[:1], devices=["rpi4"])
    collector.campaign(ARCHS[1:2], provider="cuda")
    on_rpi = collector.agent("a1", device="rpi4")
    elsewhere = collector.agent("a2", device="laptop")
    gpu = collector.agent(
        "a3", device="gpu-box", runtimes=[{"name": "onnxruntime", "version": "1.20.0", "providers": ["cpu", "cuda"]}]
    )
    assert [j["arch"] for j in lease(on_rpi, 5)] == ARCHS[:1]
    assert lease(elsewhere, 5) == []
    assert [j["arch"] for j in lease(gpu, 5, runtimes=["onnxruntime"])] == ARCHS[1:2]
    assert lease(gpu, 5, runtimes=["tflite"]) == []


def test_each_device_measures_every_architecture(collector: Harness):
    collector.campaign(ARCHS[:2])
    a, b = collector.agent("a", device="dev-a"), collector.agent("b", device="dev-b")
    assert [j["arch"] for j in lease(a, 5)] == ARCHS[:2]
    assert [j["arch"] for j in lease(b, 5)] == ARCHS[:2]


def test_an_expired_lease_goes_back_to_the_queue_and_another_agent_takes_it(collector: Harness):
    campaign = collector.campaign(ARCHS[:1])
    first, second = collector.agent("a1", device="dev"), collector.agent("a2", device="dev")
    [job] = lease(first)
    assert lease(second) == []
    collector.clock.advance(LEASE_TTL_S + 1)
    assert collector.status(campaign)["devices"][0]["queued"] == 1
    [again] = lease(second)
    assert again["job_id"] == job["job_id"] and again["lease_id"] != job["lease_id"] and again["attempt"] == 2
    beat = first.post("/heartbeat", json={"lease_ids": [job["lease_id"]]}).json()
    assert beat["renewed"] == [] and beat["lost"] == [job["lease_id"]]


def test_a_heartbeat_keeps_a_lease_alive(collector: Harness):
    collector.campaign(ARCHS[:1])
    agent, other = collector.agent("a1", device="dev"), collector.agent("a2", device="dev")
    [job] = lease(agent)
    for _ in range(3):
        collector.clock.advance(LEASE_TTL_S / 2)
        beat = agent.post("/heartbeat", json={"lease_ids": [job["lease_id"], "unknown"]}).json()
        assert beat["renewed"] == [job["lease_id"]] and beat["lost"] == ["unknown"]
    assert lease(other) == []


def test_a_heartbeat_renews_only_the_agents_own_current_leases(collector: Harness):
    collector.campaign(ARCHS[:3])
    agent, other = collector.agent("a1", device="dev"), collector.agent("a2", device="dev")
    mine = [j["lease_id"] for j in lease(agent, 2)]
    [theirs] = [j["lease_id"] for j in lease(other, 2)]
    collector.clock.advance(LEASE_TTL_S / 2)
    beat = other.post("/heartbeat", json={"lease_ids": [*mine, theirs, theirs]}).json()
    assert beat["renewed"] == [theirs] and beat["lost"] == mine
    beat = agent.post("/heartbeat", json={"lease_ids": mine}).json()
    assert beat["renewed"] == mine and beat["lost"] == []
    collector.clock.advance(LEASE_TTL_S * 0.9)  # past the first expiry, within the renewed ones
    assert lease(other, 5) == []


def test_a_job_fails_once_its_leases_have_expired_max_failures_times(collector: Harness):
    campaign = collector.campaign(ARCHS[:1], max_failures=2)
    agent = collector.agent("a1")
    lease(agent)
    collector.clock.advance(LEASE_TTL_S + 1)
    lease(agent)
    collector.clock.advance(LEASE_TTL_S + 1)
    assert lease(agent) == []
    [device] = collector.status(campaign)["devices"]
    assert (device["failed"], device["queued"], device["leased"]) == (1, 0, 0)
    status = collector.status(campaign)  # nothing to export: it ends failed, saying what failed its jobs
    assert status["state"] == "failed" and status["error"].startswith("every job failed (1 job on 1 device)")


def test_error_results_requeue_the_job_until_the_failure_limit(collector: Harness):
    campaign = collector.campaign(ARCHS[:1], max_failures=2)
    agent = collector.agent("a1")
    [job] = lease(agent)
    [ack] = agent.post("/results", json={"results": [failure(job)]}).json()["acks"]
    assert ack["status"] == "requeued"
    [job] = lease(agent)
    [ack] = agent.post("/results", json={"results": [failure(job, "out of memory")]}).json()["acks"]
    assert ack["status"] == "failed"
    assert lease(agent) == []
    status = collector.status(campaign)
    assert status["devices"][0]["failed"] == 1 and status["state"] == "failed"
    assert status["error"] == "every job failed (1 job on 1 device); the most frequent error: out of memory"


def test_a_campaign_with_some_results_ends_done_whatever_failed(collector: Harness):
    campaign = collector.campaign(ARCHS[:2], max_failures=1)
    agent = collector.agent("a1")
    first, second = lease(agent, 2)
    acks = agent.post("/results", json={"results": [measurement(first), failure(second)]}).json()["acks"]
    assert [ack["status"] for ack in acks] == ["stored", "failed"]
    status = collector.status(campaign)
    assert status["state"] == "done" and status["error"] is None
    assert (status["devices"][0]["done"], status["devices"][0]["failed"]) == (1, 1)


@pytest.mark.slow
def test_released_leases_go_back_to_the_queue_without_counting_as_failures(collector: Harness):
    collector.campaign(ARCHS[:2], max_failures=1)
    agent, other = collector.agent("a1", device="dev"), collector.agent("a2", device="dev")
    jobs = lease(agent, 2)
    [theirs] = lease(collector.agent("a3", device="other-dev"))
    response = agent.post("/leases/release", json={"lease_ids": [j["lease_id"] for j in jobs] + [theirs["lease_id"]]})
    assert response.json() == {"released": [j["lease_id"] for j in jobs], "ignored": [theirs["lease_id"]]}
    again = lease(other, 2)
    assert [j["job_id"] for j in again] == [j["job_id"] for j in jobs]
    assert agent.post("/results", json={"results": [failure(again[0])]}).status_code == 403


@pytest.mark.slow
def test_concurrent_lease_requests_hand_each_job_to_exactly_one_agent(collector: Harness):
    collector.campaign(ARCHS)
    agents = [collector.agent(f"agent-{i}", device=f"dev-{i % 2}") for i in range(12)]
    granted: list[tuple[str, str]] = []
    lock = threading.Lock()
    start = threading.Barrier(len(agents))

    def work(agent) -> None:
        start.wait()
        while jobs := lease(agent, max_jobs=2):
            with lock:
                granted.extend((j["job_id"], j["lease_id"]) for j in jobs)

    threads = [threading.Thread(target=work, args=(a,)) for a in agents]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = Counter(job for job, _ in granted)
    assert len(counts) == 2 * len(ARCHS) and set(counts.values()) == {1}


@pytest.mark.slow
def test_results_finish_jobs_and_the_campaign(collector: Harness):
    campaign = collector.campaign(ARCHS[:2])
    agent = collector.agent("a1")
    jobs = lease(agent, 2)
    collector.clock.advance(20)
    acks = agent.post("/results", json={"results": [measurement(j) for j in jobs]}).json()["acks"]
    assert [a["status"] for a in acks] == ["stored", "stored"]
    status = collector.status(campaign)
    assert status["state"] == "done" and status["devices"][0]["done"] == 2
    assert status["devices"][0]["eta_s"] == 0.0 and status["devices"][0]["rate_per_min"] == 6.0


def job_rows(collector: Harness) -> int:
    with collector.store.engine.connect() as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(JobRow))


@pytest.mark.slow
def test_a_device_gets_jobs_only_in_the_campaigns_it_leases_from(collector: Harness):
    campaigns = []
    for _ in range(12):
        campaigns.append(collector.campaign(ARCHS))
        collector.clock.advance(1)
    agent = collector.agent("a1")
    assert [j["campaign_id"] for j in lease(agent)] == campaigns[:1]
    assert job_rows(collector) == len(ARCHS)
    assert [p["queued"] for p in collector.status(campaigns[-1])["devices"]] == [len(ARCHS)]


@pytest.mark.slow
def test_one_lease_request_creates_a_bounded_number_of_jobs(collector: Harness):
    collector.campaign(ARCHS[:1])
    big = collector.campaign(samples=JOBS_PER_REQUEST + 40, seed=7, wait=False)
    agent = collector.agent("a1")
    lease(agent, max_jobs=MAX_JOBS_PER_LEASE)
    assert job_rows(collector) <= JOBS_PER_REQUEST
    lease(agent, max_jobs=MAX_JOBS_PER_LEASE)
    assert job_rows(collector) == 1 + JOBS_PER_REQUEST + 40
    [progress] = collector.status(big)["devices"]
    assert progress["total"] == JOBS_PER_REQUEST + 40
