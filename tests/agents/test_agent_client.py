"""The agent's HTTP client against real sockets: typed answers, errors mapped to retryable or not, back-off."""

from __future__ import annotations

import io
import json
import random
import statistics

import pytest

from latbench.agents.client import AgentClient, Backoff, retry
from latbench.errors import CollectorRejected, CollectorUnavailable
from tests.agents.factories import job, result
from tests.agents.scripted_server import Reply, ScriptedServer
from tests.support.ports import free_port

GRANT = {"jobs": [], "retry_after_s": 2.5}


@pytest.fixture
def server():
    with ScriptedServer() as s:
        yield s


# --- back-off ----------------------------------------------------------------------------------------------


def test_backoff_ceiling_doubles_up_to_the_cap():
    assert [Backoff(0.5, 30).ceiling(n) for n in range(9)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    assert Backoff().ceiling(10_000) == 30


def test_backoff_is_full_jitter_whose_mean_grows_with_the_ceiling():
    rng, backoff = random.Random(7), Backoff()
    for attempt in range(8):
        delays = [backoff.delay(attempt, rng) for _ in range(2000)]
        ceiling = backoff.ceiling(attempt)
        assert 0 <= min(delays) < 0.05 * ceiling and 0.95 * ceiling < max(delays) <= ceiling
        assert statistics.mean(delays) == pytest.approx(ceiling / 2, rel=0.06)


def test_retry_sleeps_a_jittered_growing_capped_schedule_until_the_call_succeeds():
    outcomes = [CollectorUnavailable("down")] * 9 + ["ok"]

    def call() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    waits: list[float] = []
    assert retry(call, sleep=waits.append, rng=random.Random(3)) == "ok"
    ceilings = [Backoff().ceiling(n) for n in range(9)]
    assert len(waits) == 9
    assert all(0 <= w <= c for w, c in zip(waits, ceilings))
    assert waits != ceilings and len(set(waits)) == 9


def test_retry_gives_up_after_its_attempts_and_never_retries_a_rejection():
    calls = []

    def down() -> None:
        calls.append(1)
        raise CollectorUnavailable("down")

    with pytest.raises(CollectorUnavailable):
        retry(down, attempts=3, sleep=lambda s: None)
    assert len(calls) == 3

    def rejected() -> None:
        calls.append(2)
        raise CollectorRejected("no", 409, "conflict")

    with pytest.raises(CollectorRejected):
        retry(rejected, sleep=lambda s: None)
    assert calls.count(2) == 1


def test_a_sleep_that_returns_true_ends_the_retries():
    """``threading.Event().wait`` is such a sleep: setting the event stops a retry loop at its next wait."""
    calls = []

    def down() -> None:
        calls.append(1)
        raise CollectorUnavailable("down")

    with pytest.raises(CollectorUnavailable):
        retry(down, sleep=lambda s: len(calls) >= 2)
    assert len(calls) == 2


# --- the client against real sockets -----------------------------------------------------------------------


def test_connection_refused_is_unavailable():
    with AgentClient(f"http://127.0.0.1:{free_port()}", "tok") as client, pytest.raises(CollectorUnavailable) as e:
        client.lease(1)
    assert "cannot reach the collector" in str(e.value)


def test_answers_are_typed_and_requests_carry_the_agent_token(server):
    server.script("/v1/leases", Reply.json(200, GRANT))
    with AgentClient(server.url + "/", "agent-token") as client:
        grant = client.lease(3)
    assert grant.jobs == [] and grant.retry_after_s == 2.5
    (request,) = server.requests_to("/v1/leases")
    assert request.headers["Authorization"] == "Bearer agent-token"
    assert json.loads(request.body) == {"max_jobs": 3, "runtimes": None}


OUT_OF_BOUNDS = [("threads", 10**6), ("classes", 10**9), ("batch", 0), ("resolution", 10**6),
                 ("artifact_bytes", 2**50), ("arch", "x" * 10_000), ("runtime", "../../bin/sh"),
                 ("arch", "a\n2026-01-01 ERROR forged \x1b[31m")]  # fmt: skip


@pytest.mark.parametrize(("field", "value"), OUT_OF_BOUNDS)
def test_a_job_out_of_bounds_is_refused_naming_its_field_and_the_others_are_kept(server, field, value):
    spec = {**job("j1", "0" * 64).model_dump(mode="json"), field: value}
    good = job("j2", "0" * 64).model_dump(mode="json")
    server.script("/v1/leases", Reply.json(200, {"jobs": [spec, good], "retry_after_s": 1}))
    with AgentClient(server.url, "tok") as client:
        grant = client.lease(2)
    assert [j.job_id for j in grant.jobs] == ["j2"]
    (refused,) = grant.unreadable
    assert (refused.job_id, refused.lease_id) == ("j1", "lease-j1")
    assert refused.reason.startswith(f"{field}: ") and refused.reason.isprintable()
    assert f"cannot read the job the collector sent ({field}: " in refused.message()


def test_a_job_a_newer_collector_sends_with_a_field_this_agent_lacks_is_refused_alone(server):
    """Version skew: one job with a field this agent does not know fails that job, not the whole grant."""
    newer = {**job("j1", "0" * 64).model_dump(mode="json"), "pinned_cores": [0, 1]}
    nameless = {**job("j3", "0" * 64).model_dump(mode="json"), "lease_id": None}
    jobs = [newer, job("j2", "0" * 64).model_dump(mode="json"), nameless, "not a job"]
    server.script("/v1/leases", Reply.json(200, {"jobs": jobs, "retry_after_s": 1}))
    with AgentClient(server.url, "tok") as client:
        grant = client.lease(4)
    assert [j.job_id for j in grant.jobs] == ["j2"] and grant.retry_after_s == 1
    assert [(u.job_id, u.reason) for u in grant.unreadable] == [("j1", "pinned_cores: Extra inputs are not permitted")]
    assert "upgrade the agent" in grant.unreadable[0].message()


def test_a_job_granted_twice_in_one_lease_is_kept_once(server):
    spec = job("j1", "0" * 64).model_dump(mode="json")
    server.script("/v1/leases", Reply.json(200, {"jobs": [spec, spec], "retry_after_s": 1}))
    with AgentClient(server.url, "tok") as client:
        grant = client.lease(2)
    assert [j.job_id for j in grant.jobs] == ["j1"] and grant.unreadable == []


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422])
def test_a_4xx_error_body_is_a_rejection_with_its_code_and_message(server, status):
    server.script("/v1/results", Reply.error(status, "lease_not_yours", "lease L is not this agent's"))
    with AgentClient(server.url, "tok") as client, pytest.raises(CollectorRejected) as e:
        client.push([result()])
    assert (e.value.status, e.value.code) == (status, "lease_not_yours")
    assert "lease L is not this agent's" in str(e.value)


def test_a_4xx_that_is_no_error_body_is_a_rejection_without_a_code(server):
    server.script("/v1/leases", Reply(404, b"<html>Not Found</html>", "text/html"))
    with AgentClient(server.url, "tok") as client, pytest.raises(CollectorRejected) as e:
        client.lease(1)
    assert e.value.status == 404 and e.value.code is None and "Not Found" in str(e.value)


@pytest.mark.parametrize(
    "reply",
    [
        Reply.error(500, "internal", "database is locked"),
        Reply.error(503, "unavailable", "starting"),
        Reply(502, b"Bad Gateway", "text/plain"),
        Reply.error(429, "slow_down", "too many requests"),
        Reply(200, b"<html>captive portal</html>", "text/html"),
    ],
    ids=["500", "503", "502-proxy", "429", "200-not-json"],
)
def test_server_failures_are_retryable(server, reply):
    server.script("/v1/leases", reply)
    with AgentClient(server.url, "tok") as client, pytest.raises(CollectorUnavailable):
        client.lease(1)


def test_a_timeout_is_retryable(server):
    server.script("/v1/leases", Reply.json(200, GRANT, delay_s=1.0))
    with AgentClient(server.url, "tok", timeout=0.2) as client, pytest.raises(CollectorUnavailable):
        client.lease(1)


def test_a_push_torn_mid_answer_is_retried_with_the_same_results(server):
    batch = [result(), result()]
    acks = [{"result_id": str(r.result_id), "status": "stored", "message": ""} for r in batch]
    answer = json.dumps({"acks": acks}).encode()
    server.script("/v1/results", Reply(200, answer, torn=True), Reply(200, answer))
    waits: list[float] = []
    with AgentClient(server.url, "tok") as client:
        pushed = retry(lambda: client.push(batch), sleep=waits.append, rng=random.Random(0))
    assert [a.result_id for a in pushed.acks] == [r.result_id for r in batch]
    first, second = server.requests_to("/v1/results")
    assert first.body == second.body
    assert len(waits) == 1


# --- answers a hostile or broken collector might give -------------------------------------------------------

ENROLLED = {"agent_id": "a", "agent_token": "lb_agent_x", "device_id": "d", "device_name": "n",
            "heartbeat_interval_s": 1.0, "lease_ttl_s": 3.0}  # fmt: skip
SPEC = job("j1", "0" * 64).model_dump(mode="json")
BAD_ANSWERS = [
    ("/v1/leases", {"jobs": [SPEC] * 65, "retry_after_s": 1}, "jobs: List should have at most 64 items"),
    ("/v1/leases", {"jobs": [], "retry_after_s": 1e308}, "retry_after_s: "),
    ("/v1/leases", {"jobs": [], "retry_after_s": -1}, "retry_after_s: "),
    ("/v1/enroll", {**ENROLLED, "heartbeat_interval_s": 0}, "heartbeat_interval_s: "),
    ("/v1/enroll", {**ENROLLED, "agent_token": "t\u00f6k\u00e9n"}, "agent_token: "),
    ("/v1/enroll", {**ENROLLED, "agent_token": "abc\r\nX-Evil: 1"}, "agent_token: "),
]


@pytest.mark.parametrize(("path", "answer", "said"), BAD_ANSWERS)
def test_answers_that_would_make_an_agent_spin_crash_or_save_a_broken_token_are_refused(server, path, answer, said):
    from tests.agents.factories import enroll_request

    server.script(path, Reply.json(200 if path == "/v1/leases" else 201, answer))
    with AgentClient(server.url, "tok") as client, pytest.raises(CollectorUnavailable) as e:
        client.lease(1) if path == "/v1/leases" else client.enroll(enroll_request(), "enroll-token")
    assert "unexpected body" in str(e.value) and said in str(e.value), str(e.value)


def test_an_answer_over_the_size_limit_or_past_its_deadline_is_not_read_on(server, monkeypatch):
    from latbench.agents import client as client_module

    server.script("/v1/leases", Reply.json(200, {"jobs": [], "retry_after_s": 1, "padding": "x" * 5000}))
    monkeypatch.setattr(client_module, "MAX_ANSWER_BYTES", 1000)
    with AgentClient(server.url, "tok") as client, pytest.raises(CollectorUnavailable, match="ran over 1000 bytes"):
        client.lease(1)
    monkeypatch.setattr(client_module, "MAX_ANSWER_BYTES", 1 << 20)
    monkeypatch.setattr(client_module, "ANSWER_DEADLINE_S", 0.2)
    server.script("/v1/leases", Reply.json(200, GRANT, delay_s=0.5))  # headers and body late: one read, past it
    with AgentClient(server.url, "tok") as client, pytest.raises(CollectorUnavailable, match="still arriving"):
        client.lease(1)


def test_a_redirect_is_refused_and_named_never_followed(server):
    with ScriptedServer() as elsewhere:
        moved = Reply(307, b"", headers={"Location": elsewhere.url + "/v1/results"})
        server.script("/v1/results", moved)
        server.script("/v1/artifacts/" + "0" * 64, Reply(302, b"", headers={"Location": elsewhere.url + "/x"}))
        with AgentClient(server.url, "secret-token") as client:
            with pytest.raises(CollectorRejected, match=r"redirect to http://127\.0\.0\.1:.* do not follow"):
                client.push([result()])
            with pytest.raises(CollectorRejected, match="302, a redirect to"):
                client.download("0" * 64, io.BytesIO(), 100)
        assert elsewhere.requests == []  # the token went nowhere else


def test_a_collectors_error_text_is_one_printable_line_of_bounded_length(server):
    server.script("/v1/leases", Reply.error(400, "bad", "line one\n2026-01-01 ERROR forged\x1b[31m" + "y" * 5000))
    with AgentClient(server.url, "tok") as client, pytest.raises(CollectorRejected) as e:
        client.lease(1)
    message = str(e.value)
    assert "\n" not in message and "\x1b" not in message and "line one\\n2026" in message
    assert len(message) < 700
