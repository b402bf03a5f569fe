"""The agent daemon: identity, job outcomes and pushes over real HTTP, then whole runs against a real collector."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest

from latbench.agents.client import Backoff
from latbench.agents.daemon import AgentDaemon, run_agent
from latbench.agents.identity import Credentials, default_state_dir
from latbench.agents.measure import TimingSettings, time_model
from latbench.agents.reports import result_item, runtime_offer
from latbench.agents.runtimes.onnxruntime import OnnxRuntime
from latbench.agents.spool import Spool, SpoolCounts
from latbench.client import CollectorClient
from latbench.errors import CollectorRejected, LatbenchError
from latbench.protocol import CampaignCreate, MeasurementSettings
from tests.agents.factories import job, result
from tests.agents.scripted_server import Reply, Request, ScriptedServer
from tests.support.ports import free_port
from tests.support.processes import ADMIN_TOKEN, Agent, Collector, totals, wait_for

ENROLLED = {"agent_id": "a-1", "agent_token": "agent-token", "device_id": "d-1", "device_name": "desk",
            "heartbeat_interval_s": 0.2, "lease_ttl_s": 5.0}  # fmt: skip
NO_JOBS = {"jobs": [], "retry_after_s": 0.05}


def stored(request: Request) -> Reply:
    results = json.loads(request.body)["results"]
    return Reply.json(
        200, {"acks": [{"result_id": r["result_id"], "status": "stored", "message": ""} for r in results]}
    )


def heartbeat(lost: tuple[str, ...] = ()):
    def answer(request: Request) -> Reply:
        held = json.loads(request.body)["lease_ids"]
        return Reply.json(200, {"renewed": [i for i in held if i not in lost], "lost": [i for i in held if i in lost],
                                "expires_at": "2030-01-01T00:00:00Z"})  # fmt: skip

    return answer


@pytest.fixture
def collector_script():
    """A scripted collector over real HTTP: enrolls, renews, has no work, and stores every result."""
    with ScriptedServer() as server:
        server.script("/v1/enroll", Reply.json(200, ENROLLED))
        server.script("/v1/heartbeat", heartbeat())
        server.script("/v1/leases", Reply.json(200, NO_JOBS))
        server.script("/v1/leases/release", Reply.json(200, {"released": [], "ignored": []}))
        server.script("/v1/results", stored)
        yield server


def make_agent(url: str, tmp_path, **options) -> AgentDaemon:
    settings = {"enrollment_token": "enroll-token", "name": "bench-1", "max_idle_s": 0.5, "poll_s": 0.05, **options}
    return AgentDaemon(url, [runtime_offer("onnxruntime")], state_dir=tmp_path / "agent", **settings)


def pushed(server: ScriptedServer) -> dict[str, dict]:
    return {r["job_id"]: r for q in server.requests_to("/v1/results") for r in json.loads(q.body)["results"]}


HEAVY = ("torch", "tensorflow", "onnx", "fastapi", "sqlalchemy", "uvicorn")


@pytest.mark.parametrize(
    ("module", "heavy"),
    [("latbench.agents.daemon", (*HEAVY, "latbench.collectors")), ("latbench.cli.agent", HEAVY)],
)
@pytest.mark.slow
def test_the_agent_imports_nothing_heavy(module, heavy):
    """A Raspberry Pi installs ``latbench[agent]``: the agent needs no torch and no collector stack (the CLI
    package also loads the collector's HTTP client, which is as light as the agent's)."""
    code = f"import sys, {module}\nloaded = [m for m in {heavy!r} if m in sys.modules]\nassert not loaded, loaded"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- identity ----------------------------------------------------------------------------------------------


def test_the_state_dir_defaults_under_latbench_home(monkeypatch, tmp_path):
    monkeypatch.setenv("LATBENCH_HOME", str(tmp_path))
    assert default_state_dir() == tmp_path / "agent"


@pytest.mark.slow
def test_enrolls_once_and_keeps_its_identity_private(collector_script, tmp_path):
    run_agent(make_agent(collector_script.url, tmp_path))
    run_agent(make_agent(collector_script.url, tmp_path, enrollment_token=None))
    assert len(collector_script.requests_to("/v1/enroll")) == 1
    enroll = collector_script.requests_to("/v1/enroll")[0]
    assert enroll.headers["Authorization"] == "Bearer enroll-token"
    body = json.loads(enroll.body)
    assert body["name"] == "bench-1" and body["runtimes"][0]["name"] == "onnxruntime"
    assert "cpu" in body["runtimes"][0]["providers"]
    path = tmp_path / "agent" / "agent.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Credentials.load(path).agent_token == "agent-token"
    assert {q.headers["Authorization"] for q in collector_script.requests_to("/v1/leases")} == {"Bearer agent-token"}


@pytest.mark.slow
def test_every_start_logs_who_it_serves_as(collector_script, tmp_path, caplog):
    """Also a start with saved credentials, which enrolls nothing: a redeployed agent's log says it is back."""
    caplog.set_level("INFO", logger="latbench.agent")
    run_agent(make_agent(collector_script.url, tmp_path))
    run_agent(make_agent(collector_script.url, tmp_path, enrollment_token=None))
    served = [r.getMessage() for r in caplog.records if "serving" in r.getMessage()]
    assert served == [f"agent bench-1 (a-1) of device desk serving {collector_script.url}"] * 2


@pytest.mark.slow
def test_a_restart_without_a_name_goes_on_as_the_enrolled_agent_and_enrolls_again_under_it(
    collector_script, tmp_path, caplog
):
    caplog.set_level("INFO", logger="latbench.agent")
    run_agent(make_agent(collector_script.url, tmp_path, name="real1"))
    run_agent(make_agent(collector_script.url, tmp_path, name=None, enrollment_token=None))
    served = [r.getMessage() for r in caplog.records if "serving" in r.getMessage()]
    assert served == [f"agent real1 (a-1) of device desk serving {collector_script.url}"] * 2
    run_agent(make_agent(collector_script.url, tmp_path, name="other", enrollment_token=None))
    assert "--name other is ignored" in caplog.text and "holds agent real1" in caplog.text
    revoked = Reply.error(401, "unauthorized", "unknown agent token")
    collector_script.script("/v1/leases", revoked, Reply.json(200, NO_JOBS))
    run_agent(make_agent(collector_script.url, tmp_path, name=None))  # revoked: enrolls again, as real1
    assert [json.loads(q.body)["name"] for q in collector_script.requests_to("/v1/enroll")] == ["real1", "real1"]


def test_a_final_error_reaches_a_collector_from_before_the_flag_as_a_plain_error(collector_script, tmp_path):
    """Such a collector refuses the unknown field (422); the agent sends the error again without it."""

    def old_collector(request: Request) -> Reply:
        results = json.loads(request.body)["results"]
        if any("final" in r for r in results):
            return Reply.error(422, "invalid", "results.0.final: Extra inputs are not permitted")
        return stored(request)

    collector_script.script("/v1/results", old_collector, old_collector)
    with Spool(tmp_path / "agent" / "spool.sqlite") as spool:
        spool.add(result("refused").model_copy(update={"error": "no profiler", "stats": None, "times_ms": [],
                                                        "final": True}))  # fmt: skip
    run_agent(make_agent(collector_script.url, tmp_path))
    [pushed_error] = [r for q in collector_script.requests_to("/v1/results") for r in json.loads(q.body)["results"]
                      if "final" not in r]  # fmt: skip
    assert pushed_error["error"] == "no profiler"
    with Spool(tmp_path / "agent" / "spool.sqlite") as spool:
        assert spool.counts() == SpoolCounts(pending=0, dead=0)


def test_a_first_start_needs_an_enrollment_token(tmp_path):
    with pytest.raises(LatbenchError, match="not enrolled"):
        run_agent(make_agent(f"http://127.0.0.1:{free_port()}", tmp_path, enrollment_token=None))


@pytest.mark.slow
def test_a_state_dir_serves_the_collector_it_enrolled_with(collector_script, tmp_path):
    run_agent(make_agent(collector_script.url, tmp_path))
    with pytest.raises(LatbenchError, match="holds the agent enrolled with"):
        run_agent(make_agent(f"http://127.0.0.1:{free_port()}", tmp_path))


@pytest.mark.slow
def test_a_revoked_token_is_replaced_by_enrolling_again(collector_script, tmp_path):
    run_agent(make_agent(collector_script.url, tmp_path))
    revoked = Reply.error(401, "unauthorized", "unknown agent token")
    collector_script.script("/v1/leases", revoked, Reply.json(200, NO_JOBS))
    run_agent(make_agent(collector_script.url, tmp_path))
    assert len(collector_script.requests_to("/v1/enroll")) == 2

    collector_script.script("/v1/leases", revoked)
    with pytest.raises(LatbenchError, match="no longer accepts this agent's token"):
        run_agent(make_agent(collector_script.url, tmp_path, enrollment_token=None))


@pytest.mark.slow
def test_once_enrolled_again_it_leases_at_once_without_a_warning(collector_script, tmp_path, caplog):
    """The 401 that led to enrolling again is answered: no "trying again" warning, no back-off before the next
    lease (with a 30 s back-off, a wait would last until the run ends)."""
    run_agent(make_agent(collector_script.url, tmp_path))
    leased: list[float] = []

    def lease(reply: Reply) -> Callable[[Request], Reply]:
        def answer(request: Request) -> Reply:
            leased.append(time.monotonic())
            return reply

        return answer

    revoked = Reply.error(401, "unauthenticated", "unknown or revoked token")
    collector_script.script("/v1/leases", lease(revoked), lease(Reply.json(200, NO_JOBS)))
    caplog.set_level(logging.INFO, logger="latbench.agent")
    run_agent(make_agent(collector_script.url, tmp_path, backoff=Backoff(first_s=30, cap_s=30), max_idle_s=4))
    assert len(collector_script.requests_to("/v1/enroll")) == 2
    assert len(leased) >= 2 and leased[1] - leased[0] < 10.0  # not the 30 s back-off (a busy machine is slow)
    warnings = [r.getMessage() for r in caplog.records if r.name == "latbench.agent" and r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].endswith("; enrolling again"), warnings


# --- jobs and pushes ---------------------------------------------------------------------------------------


def test_a_real_measurement_becomes_a_valid_result(conv_model):
    settings = TimingSettings(warmup_runs=2, warmup_time_s=0, min_runs=10, min_time_s=0.02, max_attempts=1)
    with OnnxRuntime() as rt:
        rt.load(conv_model)
        item = result_item(job("j", "0" * 64), time_model(rt, settings), rt)
    assert item.error is None and item.stats is not None
    assert len(item.times_ms) == item.stats.runs >= 10
    assert item.runtime_version == OnnxRuntime.version() and item.optimization == "all"
    assert item.state_before is not None and item.measured_at.tzinfo is not None


@pytest.mark.slow
def test_each_job_gets_a_result_even_when_it_cannot_run_here(collector_script, tmp_path, conv_model):
    model = conv_model.read_bytes()
    sha = hashlib.sha256(model).hexdigest()
    wrong = hashlib.sha256(b"another model").hexdigest()
    jobs = [job("good", sha, reference_sha256=sha), job("bad-hash", wrong), job("no-runtime", sha, runtime="coreml"),
            job("other-format", sha).model_copy(update={"artifact_format": "tflite"}),
            job("wrong-shape", sha).model_copy(update={"input_shapes": {"input": [1, 3]}})]  # fmt: skip
    grant = {"jobs": [j.model_dump(mode="json") for j in jobs], "retry_after_s": 0}
    collector_script.script("/v1/leases", Reply.json(200, grant), Reply.json(200, NO_JOBS))
    for digest in (sha, wrong):
        collector_script.script(f"/v1/artifacts/{digest}", Reply(200, model, "application/octet-stream"))
    run_agent(make_agent(collector_script.url, tmp_path, max_jobs=5))
    results = pushed(collector_script)
    assert results["good"]["error"] is None and results["good"]["stats"]["runs"] >= 10
    assert results["good"]["ref_ratio"] > 0
    assert "arrived with sha256" in results["bad-hash"]["error"]
    assert "unknown runtime 'coreml'" in results["no-runtime"]["error"]
    assert "built a tflite artifact" in results["other-format"]["error"]
    assert "has 4 dimensions" in results["wrong-shape"]["error"] and results["wrong-shape"]["final"] is True
    # a refusal another attempt here would repeat is final; one another agent may not meet is not
    assert not any("final" in results[j] for j in ("good", "bad-hash", "no-runtime", "other-format"))
    assert len(collector_script.requests_to(f"/v1/artifacts/{sha}")) == 1
    with Spool(tmp_path / "agent" / "spool.sqlite") as spool:
        assert spool.counts() == SpoolCounts(pending=0, dead=0)


@pytest.mark.slow
def test_a_job_the_agent_cannot_read_fails_alone_with_its_reason(collector_script, tmp_path, conv_model):
    """A newer collector's job (a field this agent lacks) gets an error result; the grant's other job is measured."""
    model = conv_model.read_bytes()
    sha = hashlib.sha256(model).hexdigest()
    newer = {**job("newer", sha).model_dump(mode="json"), "pinned_cores": [0]}
    grant = {"jobs": [newer, job("good", sha).model_dump(mode="json")], "retry_after_s": 0}
    collector_script.script("/v1/leases", Reply.json(200, grant), Reply.json(200, NO_JOBS))
    collector_script.script(f"/v1/artifacts/{sha}", Reply(200, model, "application/octet-stream"))
    run_agent(make_agent(collector_script.url, tmp_path, max_jobs=2))
    results = pushed(collector_script)
    assert results["good"]["error"] is None and results["good"]["stats"]["runs"] >= 10
    assert results["newer"]["lease_id"] == "lease-newer"
    assert "cannot read the job the collector sent (pinned_cores: Extra inputs" in results["newer"]["error"]
    with Spool(tmp_path / "agent" / "spool.sqlite") as spool:
        assert spool.counts() == SpoolCounts(pending=0, dead=0)


@pytest.mark.slow
def test_sigterm_abandons_a_push_the_collector_does_not_answer_and_keeps_the_result(
    collector_script, tmp_path, conv_model
):
    model = conv_model.read_bytes()
    sha = hashlib.sha256(model).hexdigest()
    grant = {"jobs": [job("j", sha).model_dump(mode="json")], "retry_after_s": 0}
    collector_script.script("/v1/leases", Reply.json(200, grant), Reply.json(200, NO_JOBS))
    collector_script.script(f"/v1/artifacts/{sha}", Reply(200, model, "application/octet-stream"))
    collector_script.script("/v1/results", Reply.json(200, {"acks": []}, delay_s=25))
    agent = make_agent(collector_script.url, tmp_path, max_idle_s=None, push_interval_s=0.0)
    signalled: list[float] = []

    def stop_during_the_push() -> None:
        wait_for(lambda: collector_script.requests_to("/v1/results"), 30, "a push")
        time.sleep(0.3)
        signalled.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=stop_during_the_push, daemon=True).start()
    run_agent(agent)
    assert signalled and time.monotonic() - signalled[0] < 20  # the shutdown push's own 5 s, not the hang's 25
    with Spool(tmp_path / "agent" / "spool.sqlite") as spool:
        assert spool.counts() == SpoolCounts(pending=1, dead=0)


@pytest.mark.parametrize(("interval", "sizes"), [(60.0, [3]), (0.0, [1, 1, 1])])
@pytest.mark.slow
def test_a_leases_results_go_in_one_push_unless_they_wait_too_long(
    collector_script, tmp_path, conv_model, interval, sizes
):
    model = conv_model.read_bytes()
    sha = hashlib.sha256(model).hexdigest()
    grant = {"jobs": [job(f"j{i}", sha).model_dump(mode="json") for i in range(3)], "retry_after_s": 0}
    collector_script.script("/v1/leases", Reply.json(200, grant), Reply.json(200, NO_JOBS))
    collector_script.script(f"/v1/artifacts/{sha}", Reply(200, model, "application/octet-stream"))
    run_agent(make_agent(collector_script.url, tmp_path, max_jobs=3, push_interval_s=interval))
    pushes = [json.loads(q.body)["results"] for q in collector_script.requests_to("/v1/results")]
    assert [len(p) for p in pushes] == sizes
    assert set(pushed(collector_script)) == {"j0", "j1", "j2"}


def test_a_negative_push_interval_is_refused(tmp_path):
    with pytest.raises(LatbenchError, match="push_interval_s"):
        make_agent("http://127.0.0.1:9", tmp_path, push_interval_s=-1.0)


@pytest.mark.slow
def test_a_job_whose_lease_is_lost_before_it_starts_is_skipped(collector_script, tmp_path, conv_model):
    model = conv_model.read_bytes()
    sha = hashlib.sha256(model).hexdigest()
    jobs = [job("long", sha, min_time_s=0.8), job("lost", sha)]
    grant = {"jobs": [j.model_dump(mode="json") for j in jobs], "retry_after_s": 0}
    collector_script.script("/v1/leases", Reply.json(200, grant), Reply.json(200, NO_JOBS))
    collector_script.script("/v1/heartbeat", heartbeat(lost=("lease-lost",)))
    collector_script.script(f"/v1/artifacts/{sha}", Reply(200, model, "application/octet-stream"))
    run_agent(make_agent(collector_script.url, tmp_path, max_jobs=2))
    assert set(pushed(collector_script)) == {"long"}
    assert collector_script.requests_to("/v1/leases/release") == []


@pytest.mark.slow
def test_spooled_results_are_pushed_at_start_and_a_rejected_one_becomes_a_dead_letter(collector_script, tmp_path):
    good = [result(f"job-{i}") for i in range(5)]
    bad = result("not-mine")
    with Spool(tmp_path / "agent" / "spool.sqlite") as spool:
        for item in [*good[:2], bad, *good[2:]]:
            spool.add(item)
    accepted: list[str] = []

    def results(request: Request) -> Reply:
        batch = json.loads(request.body)["results"]
        if any(r["job_id"] == "not-mine" for r in batch):
            return Reply.error(409, "lease_not_yours", "lease lease-not-mine is not this agent's")
        accepted.extend(r["job_id"] for r in batch)
        return stored(request)

    collector_script.script("/v1/results", results)
    run_agent(make_agent(collector_script.url, tmp_path))
    assert sorted(accepted) == sorted(r.job_id for r in good)
    with Spool(tmp_path / "agent" / "spool.sqlite") as spool:
        assert spool.counts() == SpoolCounts(pending=0, dead=1)
        [(item, reason)] = spool.dead_letters()
    assert item == bad and "409 lease_not_yours" in reason


def test_a_push_to_something_that_is_no_collector_dead_letters_nothing(collector_script, tmp_path):
    with Spool(tmp_path / "agent" / "spool.sqlite") as spool:
        spool.add(result())
    collector_script.script("/v1/results", Reply(404, b"<html>Not Found</html>", "text/html"))
    with pytest.raises(LatbenchError, match="answered 404"):
        run_agent(make_agent(collector_script.url, tmp_path))
    with Spool(tmp_path / "agent" / "spool.sqlite") as spool:
        assert spool.counts() == SpoolCounts(pending=1, dead=0)


# --- against a real collector process ----------------------------------------------------------------------

QUICK = MeasurementSettings(warmup_runs=2, warmup_time_s=0.02, min_runs=10, min_time_s=0.05, max_attempts=1)


@pytest.fixture
def collector(tmp_path, artifact_cache):
    c = Collector(f"sqlite:///{tmp_path / 'collector.sqlite'}", tmp_path / "collector", free_port(),
                  lease_ttl_s=30, artifacts=artifact_cache).start()  # fmt: skip
    yield c
    c.stop()


def campaign(collector: Collector, settings: MeasurementSettings = QUICK) -> tuple[str, str]:
    """An enrollment token and a campaign of 3 architectures whose artifacts are built. Every test measures the
    same 3, so the session's artifact cache exports them once."""
    with CollectorClient(collector.url, ADMIN_TOKEN) as admin:
        token = admin.create_enrollment_token("agent-tests").token
        campaign_id = admin.create_campaign(CampaignCreate(space="nb201", samples=3, seed=21, settings=settings))
        wait_for(lambda: admin.campaign(campaign_id).state != "building", 120, "the campaign's artifacts")
    return token, campaign_id


def results_of(collector: Collector, campaign_id: str) -> list[dict]:
    with CollectorClient(collector.url, ADMIN_TOKEN) as admin:
        return list(admin.iter_results(campaign_id))


def spool_counts(state_dir) -> tuple[int, int]:
    """(pending, dead) read beside a running agent, without its lock."""
    if not (state_dir / "spool.sqlite").exists():
        return (0, 0)
    db = sqlite3.connect(state_dir / "spool.sqlite")
    try:
        return db.execute("SELECT COUNT(*) - COUNT(dead_reason), COUNT(dead_reason) FROM results").fetchone()
    finally:
        db.close()


@pytest.mark.slow
def test_completes_a_campaign_once_per_arch_and_dead_letters_a_stray_spooled_result(collector, tmp_path):
    token, campaign_id = campaign(collector)
    stray = result("no-such-job")
    with Spool(tmp_path / "agent" / "spool.sqlite") as spool:
        spool.add(stray)
    run_agent(make_agent(collector.url, tmp_path, enrollment_token=token, max_idle_s=1, poll_s=0.2, max_jobs=2))
    assert totals(collector.status(campaign_id)) == {"queued": 0, "leased": 0, "done": 3, "failed": 0, "total": 3}
    rows = results_of(collector, campaign_id)
    assert len(rows) == 3 == len({r["arch"] for r in rows})
    assert {r["agent"] for r in rows} == {"bench-1"}
    assert all(float(r["latency_ms"]) > 0 for r in rows)
    with Spool(tmp_path / "agent" / "spool.sqlite") as spool:
        [(dead, reason)] = spool.dead_letters()
        assert spool.counts() == SpoolCounts(pending=0, dead=1)
    assert dead == stray and "404 not_found" in reason

    run_agent(make_agent(collector.url, tmp_path, enrollment_token=None, max_idle_s=0.5))
    with CollectorClient(collector.url, ADMIN_TOKEN) as admin:
        assert [d.agents for d in admin.devices()] == [["bench-1"]]


@pytest.mark.slow
def test_results_measured_while_the_collector_is_down_land_when_it_returns(collector, tmp_path):
    slow = QUICK.model_copy(update={"min_time_s": 1.0})
    token, campaign_id = campaign(collector, settings=slow)
    agent = Agent(
        collector, token, "steady", tmp_path / "steady", "--max-jobs", "3", "--poll", "0.2", "--push-interval", "0"
    )
    try:
        wait_for(lambda: totals(collector.status(campaign_id))["done"] >= 1, 60, "a first result")
        collector.stop(signal.SIGKILL)
        wait_for(lambda: spool_counts(tmp_path / "steady")[0] >= 1, 30, "a result spooled while the collector is down")
        collector.start()
        wait_for(lambda: totals(collector.status(campaign_id))["done"] == 3, 90, "every result after the outage")
    finally:
        assert agent.stop() == 0, agent.log.read_text()[-3000:]
    rows = results_of(collector, campaign_id)
    assert len(rows) == 3 == len({r["arch"] for r in rows})
    assert spool_counts(tmp_path / "steady") == (0, 0)


@pytest.mark.slow
def test_sigterm_abandons_the_measurement_releases_the_leases_and_exits_0(collector, tmp_path):
    long = QUICK.model_copy(update={"min_time_s": 60.0, "max_time_s": 60.0})
    token, campaign_id = campaign(collector, settings=long)
    agent = Agent(collector, token, "patient", tmp_path / "patient", "--max-jobs", "3")
    wait_for(lambda: totals(collector.status(campaign_id))["leased"] == 3, 60, "the jobs leased")
    time.sleep(1.5)
    started = time.monotonic()
    assert agent.stop(signal.SIGTERM, timeout_s=45) == 0, agent.log.read_text()[-3000:]
    assert time.monotonic() - started < 30  # not the 60 s measurement, with room for a busy machine's exit
    assert totals(collector.status(campaign_id)) == {"queued": 3, "leased": 0, "done": 0, "failed": 0, "total": 3}
    log = agent.log.read_text()
    assert "released 3 lease(s)" in log and "Traceback" not in log
    assert os.path.exists(tmp_path / "patient" / "agent.json")


@pytest.mark.slow
def test_a_revoked_agent_is_told_the_tokens_that_enroll_it_again_and_they_do(collector, tmp_path, caplog):
    """After ``latbench agents revoke``: its name stays taken, so an enrollment token enrolls it under another
    name only, and an admin token under its own."""
    with CollectorClient(collector.url, ADMIN_TOKEN) as admin:
        token = admin.create_enrollment_token("agent-tests").token
        run_agent(make_agent(collector.url, tmp_path, enrollment_token=token))
        admin.revoke_agent("bench-1")
        with pytest.raises(LatbenchError) as hint:
            run_agent(make_agent(collector.url, tmp_path, enrollment_token=None))
        assert "401 unauthenticated" in str(hint.value)
        assert str(hint.value).endswith(
            "the collector no longer accepts this agent's token; to enroll it again, start it with an admin token "
            "(--token or LATBENCH_TOKEN), or with an enrollment token under another --name (enrollment tokens "
            "enroll new names only)"
        )
        with pytest.raises(CollectorRejected, match="409 conflict: agent name 'bench-1' is enrolled already"):
            run_agent(make_agent(collector.url, tmp_path, enrollment_token=token))
        caplog.set_level(logging.INFO, logger="latbench.agent")
        run_agent(make_agent(collector.url, tmp_path, enrollment_token=ADMIN_TOKEN))
        assert "enrolled as agent bench-1" in caplog.text and "trying again" not in caplog.text
        admin.revoke_agent("bench-1")
        run_agent(make_agent(collector.url, tmp_path, enrollment_token=token, name="bench-2"))
        assert "enrolled as agent bench-2" in caplog.text
