"""Results: stored exactly once, accepted late while the job is open, and a bad batch changes nothing."""

from __future__ import annotations

import threading
import uuid

import pytest

from tests.support.served import ARCHS, LEASE_TTL_S, Harness, failure, measured_as, measurement


def lease(agent, max_jobs: int = 1) -> list[dict]:
    return agent.post("/leases", json={"max_jobs": max_jobs}).json()["jobs"]


def push(agent, *results: dict) -> list[str]:
    response = agent.post("/results", json={"results": list(results)})
    assert response.status_code == 200, response.text
    return [ack["status"] for ack in response.json()["acks"]]


def stored_results(collector: Harness) -> int:
    return len(collector.dump()["results"])


def test_the_same_result_pushed_twice_is_stored_once(collector: Harness):
    collector.campaign()
    agent = collector.agent("a1")
    [job] = lease(agent)
    result = measurement(job)
    assert push(agent, result) == ["stored"]
    assert push(agent, result, result) == ["duplicate", "duplicate"]
    assert stored_results(collector) == 1


def test_the_same_batch_pushed_concurrently_is_stored_once(collector: Harness):
    collector.campaign()
    agent = collector.agent("a1")
    batch = [measurement(job) for job in lease(agent, 5)]
    statuses: list[list[str]] = []
    start = threading.Barrier(4)

    def send() -> None:
        start.wait()
        statuses.append(push(agent, *batch))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [["duplicate"] * 5] * 3 + [["stored"] * 5]
    assert stored_results(collector) == 5


def test_a_result_repeated_inside_one_batch_is_stored_once(collector: Harness):
    collector.campaign()
    agent = collector.agent("a1")
    [job] = lease(agent)
    result = measurement(job)
    assert push(agent, result, result) == ["stored", "duplicate"]


def test_a_result_id_taken_by_another_jobs_result_refuses_the_batch(collector: Harness):
    collector.campaign()
    agent = collector.agent("a1")
    first, second, third, fourth = lease(agent, 4)
    stored = measurement(first)
    assert push(agent, stored) == ["stored"]
    errored = failure(second)
    assert push(agent, errored) == ["requeued"]
    before = collector.dump()
    for taken in (stored, errored):
        reused = measurement(third, median_ms=2.0, result_id=taken["result_id"])
        response = agent.post("/results", json={"results": [measurement(fourth), reused]})
        assert response.status_code == 409 and "already taken" in response.json()["message"], response.text
        assert collector.dump() == before
    assert push(agent, measurement(third)) == ["stored"]  # the refused batch left the connection usable
    assert push(agent, stored, errored) == ["duplicate", "duplicate"]


def test_a_measurement_reusing_its_own_jobs_error_result_id_is_refused_for_what_it_is(collector: Harness):
    collector.campaign(max_failures=3)
    agent = collector.agent("a1")
    [job] = lease(agent)
    errored = failure(job)
    assert push(agent, errored) == ["requeued"]
    [again] = lease(agent)
    response = agent.post("/results", json={"results": [measurement(again, result_id=errored["result_id"])]})
    assert response.status_code == 409 and "an earlier result of the same job" in response.json()["message"]


def test_an_error_result_reusing_another_jobs_result_id_refuses_the_batch(collector: Harness):
    """Acked as a duplicate, the error would be dropped by its agent and its job would stay leased."""
    collector.campaign()
    agent = collector.agent("a1")
    first, second, third = lease(agent, 3)
    stored, errored = measurement(first), failure(second)
    assert push(agent, stored, errored) == ["stored", "requeued"]
    before = collector.dump()
    for taken in (stored, errored):
        reused = {**failure(third), "result_id": taken["result_id"]}
        response = agent.post("/results", json={"results": [reused]})
        assert response.status_code == 409 and "already taken" in response.json()["message"], response.text
        assert collector.dump() == before
    assert push(agent, failure(third)) == ["requeued"]


def test_two_jobs_results_sharing_an_id_in_one_batch_refuse_the_batch(collector: Harness):
    collector.campaign()
    agent = collector.agent("a1")
    first, second = lease(agent, 2)
    one = measurement(first)
    for other in (measurement(second, result_id=one["result_id"]), {**failure(second), "result_id": one["result_id"]}):
        before = collector.dump()
        response = agent.post("/results", json={"results": [one, other]})
        assert response.status_code == 409 and "already taken" in response.json()["message"], response.text
        assert collector.dump() == before
    assert push(agent, one, measurement(second)) == ["stored", "stored"]


def test_a_late_result_for_an_expired_lease_is_accepted_while_the_job_is_open(collector: Harness):
    collector.campaign()
    slow, fast = collector.agent("slow", device="dev"), collector.agent("fast", device="dev")
    [job] = lease(slow)
    collector.clock.advance(LEASE_TTL_S + 1)
    [again] = lease(fast)
    assert again["job_id"] == job["job_id"]
    assert push(slow, measurement(job)) == ["stored"]
    assert push(fast, measurement(again)) == ["dropped"]
    assert fast.post("/heartbeat", json={"lease_ids": [again["lease_id"]]}).json()["lost"] == [again["lease_id"]]
    assert stored_results(collector) == 1


def test_an_error_from_a_superseded_lease_does_not_count(collector: Harness):
    collector.campaign(max_failures=2)
    slow, fast = collector.agent("slow", device="dev"), collector.agent("fast", device="dev")
    [job] = lease(slow)
    collector.clock.advance(LEASE_TTL_S + 1)
    [again] = lease(fast)
    assert push(slow, failure(job)) == ["dropped"]
    assert push(fast, measurement(again)) == ["stored"]


def test_acks_cover_every_result_of_a_mixed_batch(collector: Harness):
    collector.campaign()
    agent = collector.agent("a1")
    jobs = lease(agent, 3)
    done = measurement(jobs[0])
    assert push(agent, done) == ["stored"]
    assert push(agent, done, measurement(jobs[0]), measurement(jobs[1]), failure(jobs[2])) == [
        "duplicate",
        "dropped",
        "stored",
        "requeued",
    ]


def test_a_batch_with_an_unknown_job_or_lease_is_refused_whole(collector: Harness):
    collector.campaign()
    agent = collector.agent("a1")
    good, other = lease(agent, 2)
    before = collector.dump()
    unknown_job = measurement({**other, "job_id": "f" * 32})
    response = agent.post("/results", json={"results": [measurement(good), unknown_job]})
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    unknown_lease = measurement({**other, "lease_id": "f" * 32})
    assert agent.post("/results", json={"results": [measurement(good), unknown_lease]}).status_code == 404
    crossed = measurement({**other, "lease_id": good["lease_id"]})
    response = agent.post("/results", json={"results": [measurement(good), crossed]})
    assert response.status_code == 422 and "is not a lease of job" in response.json()["message"]
    assert collector.dump() == before


def test_an_agent_cannot_push_results_for_another_agents_lease(collector: Harness):
    collector.campaign()
    mine, theirs = collector.agent("a1", device="dev"), collector.agent("a2", device="dev")
    [job] = lease(theirs)
    before = collector.dump()
    response = mine.post("/results", json={"results": [measurement(job)]})
    assert response.status_code == 403 and "another agent" in response.json()["message"]
    assert mine.post("/leases/release", json={"lease_ids": [job["lease_id"]]}).json()["ignored"] == [job["lease_id"]]
    assert mine.post("/heartbeat", json={"lease_ids": [job["lease_id"]]}).json()["lost"] == [job["lease_id"]]
    after = collector.dump()
    assert after["jobs"] == before["jobs"] and after["results"] == before["results"]
    assert after["leases"] == before["leases"]


@pytest.mark.slow
def test_a_measurement_finishes_a_failed_job(collector: Harness):
    campaign = collector.campaign(max_failures=1)
    agent = collector.agent("a1")
    [job] = lease(agent)
    collector.clock.advance(LEASE_TTL_S + 1)
    assert lease(agent)[0]["job_id"] != job["job_id"]
    assert collector.status(campaign)["devices"][0]["failed"] == 1
    assert push(agent, measurement(job)) == ["stored"]
    assert collector.status(campaign)["devices"][0]["failed"] == 0


def test_a_final_error_fails_the_job_at_once_and_the_status_says_why(collector: Harness):
    """A refusal the device would repeat (``final``) is not leased again; a campaign's status names each reason."""
    campaign = collector.campaign(max_failures=2)
    agent = collector.agent("a1")
    refused, crashed = "profiling not supported by runtime tflite on a remote device", "runtime crashed"
    first, second, third = lease(agent, 3)
    acks = push(agent, {**failure(first, refused), "final": True}, {**failure(second, refused), "final": True},
                failure(third, crashed))  # fmt: skip
    assert acks == ["failed", "failed", "requeued"]
    leased = {j["job_id"]: j for j in lease(agent, len(ARCHS))}
    assert third["job_id"] in leased and not {first["job_id"], second["job_id"]} & leased.keys()
    [device] = collector.status(campaign)["devices"]
    assert device["failed"] == 2 and device["failures"] == [{"error": refused, "jobs": 2}]
    assert push(agent, failure(leased[third["job_id"]], crashed)) == ["failed"]  # its second failure: the limit
    [device] = collector.status(campaign)["devices"]
    assert device["failures"] == [{"error": refused, "jobs": 2}, {"error": crashed, "jobs": 1}]


def test_a_final_flag_on_a_measurement_is_refused(collector: Harness):
    collector.campaign()
    agent = collector.agent("a1")
    [job] = lease(agent)
    response = agent.post("/results", json={"results": [{**measurement(job), "final": True}]})
    assert response.status_code == 422 and "only an error result can be final" in response.text


def test_a_body_large_enough_to_be_read_off_the_event_loop_is_read_and_checked_alike(collector: Harness):
    """A push over ``INLINE_PARSE_BYTES`` is read in a worker thread: stored as any other, refused as any other."""
    from latbench.collectors.agent_api import INLINE_PARSE_BYTES

    collector.campaign()
    agent = collector.agent("a1")
    first, second = lease(agent, 2)
    times = [1.0 + i * 1e-6 for i in range(40_000)]
    good = measured_as(first, times)
    bad = {**good, "result_id": str(uuid.uuid4()), "times_ms": [*times[:-1], -1.0]}
    assert len(str(bad)) > INLINE_PARSE_BYTES
    response = agent.post("/results", json={"results": [bad]})
    assert response.status_code == 422 and "results.0.times_ms.39999" in response.text
    assert push(agent, good, measurement(second)) == ["stored", "stored"]
    assert stored_results(collector) == 2
