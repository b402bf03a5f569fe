"""The agent daemon when the fault is its own or its machine's, not the job's: a state dir from other hardware, a
run killed while it held leases, a collector away for long, and results it could not deliver before going idle."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import signal
import sqlite3

import pytest

from latbench.agents.client import AgentClient, Backoff
from latbench.agents.daemon import run_agent
from latbench.agents.environment import machine_info
from latbench.agents.held import HELD_FILE, KILLED_WHILE_MEASURING
from latbench.agents.identity import Credentials
from latbench.agents.spool import Spool, SpoolCounts
from latbench.client import CollectorClient
from latbench.errors import LatbenchError, LocalStorageError
from tests.agents.factories import job, result
from tests.agents.scripted_server import Reply, Request
from tests.agents.test_daemon import NO_JOBS, QUICK, campaign, make_agent, pushed, stored
from tests.agents.test_daemon import collector as served_collector
from tests.agents.test_daemon import collector_script as scripted
from tests.support.processes import Agent, Collector, wait_for

collector_script = scripted
"""The scripted collector of the daemon's tests: enrolls, renews, has no work, stores every result."""
collector = served_collector
"""A real collector process of the daemon's tests."""


def test_a_state_dir_enrolled_on_other_hardware_is_refused_and_an_old_one_takes_this_machines(
    collector_script, tmp_path
):
    run_agent(make_agent(collector_script.url, tmp_path))
    leased = len(collector_script.requests_to("/v1/leases"))
    path = tmp_path / "agent" / "agent.json"
    here = machine_info().fingerprint()
    assert Credentials.load(path).fingerprint == here  # enrolling keeps it
    saved = json.loads(path.read_text())
    path.write_text(json.dumps({**saved, "fingerprint": "0123456789abcdef"}))
    with pytest.raises(LatbenchError, match=r"enrolled on other hardware \(fingerprint 0123456789abcdef\)") as caught:
        run_agent(make_agent(collector_script.url, tmp_path, enrollment_token=None))
    assert f"(fingerprint {here})" in str(caught.value) and "another --state-dir" in str(caught.value)
    assert len(collector_script.requests_to("/v1/leases")) == leased  # it leased nothing as the other device
    path.write_text(json.dumps({k: v for k, v in saved.items() if k != "fingerprint"}))  # a file from before
    run_agent(make_agent(collector_script.url, tmp_path, enrollment_token=None))
    assert Credentials.load(path).fingerprint == here


def test_a_killed_runs_leases_are_settled_at_the_next_start(collector_script, tmp_path):
    """The job it was measuring gets an error result (a failed attempt: a model that kills the agent is failed
    after a few), the leases it had not started are released at once instead of expiring as failures."""
    run_agent(make_agent(collector_script.url, tmp_path))  # enrolled
    held = {"lease-a": "job-a", "lease-b": "job-b", "lease-c": "job-c"}
    (tmp_path / "agent" / HELD_FILE).write_text(json.dumps({"held": held, "measuring": "lease-b"}))
    run_agent(make_agent(collector_script.url, tmp_path, enrollment_token=None))
    [released] = collector_script.requests_to("/v1/leases/release")
    assert json.loads(released.body)["lease_ids"] == ["lease-a", "lease-c"]
    [error] = [r for q in collector_script.requests_to("/v1/results") for r in json.loads(q.body)["results"]]
    assert (error["job_id"], error["lease_id"], error["error"]) == ("job-b", "lease-b", KILLED_WHILE_MEASURING)
    assert not (tmp_path / "agent" / HELD_FILE).exists()


def test_an_unreadable_leases_file_is_passed_over(collector_script, tmp_path, caplog):
    run_agent(make_agent(collector_script.url, tmp_path))
    (tmp_path / "agent" / HELD_FILE).write_text('{"held": ["not", "a", "map"]')
    run_agent(make_agent(collector_script.url, tmp_path, enrollment_token=None))
    assert "cannot be read" in caplog.text and not collector_script.requests_to("/v1/leases/release")


def test_a_long_outage_is_one_warning_and_its_end_one_line(collector_script, tmp_path, caplog):
    with Spool(tmp_path / "agent" / "spool.sqlite") as spool:
        spool.add(result("job-1"))
    run_agent(make_agent(collector_script.url, tmp_path))  # enrolled, spool pushed
    with Spool(tmp_path / "agent" / "spool.sqlite") as spool:
        spool.add(result("job-2"))
    away = Reply.error(503, "unavailable", "down for maintenance")
    collector_script.script("/v1/results", *[away] * 8, stored)
    caplog.set_level(logging.INFO, logger="latbench.agent")
    agent = make_agent(collector_script.url, tmp_path, backoff=Backoff(first_s=0.01, cap_s=0.02), max_idle_s=3)
    run_agent(agent)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "down for maintenance" in warnings[0], warnings
    back = [r.getMessage() for r in caplog.records if "answers again" in r.getMessage()]
    assert len(back) == 1 and back[0].endswith("; 1 spooled result(s) delivered"), back


def test_going_idle_with_results_undelivered_is_a_failure(collector_script, tmp_path):
    """A script that runs an agent with --max-idle until it is done must not take "exit 0" for "all sent"."""
    run_agent(make_agent(collector_script.url, tmp_path))
    with Spool(tmp_path / "agent" / "spool.sqlite") as spool:
        spool.add(result("job-1"))

    def away(request: Request) -> Reply:
        return Reply.error(503, "unavailable", "down")

    collector_script.script("/v1/results", away)
    agent = make_agent(collector_script.url, tmp_path, backoff=Backoff(first_s=0.01, cap_s=0.05), max_idle_s=0.5)
    with pytest.raises(LatbenchError, match=r"1 result\(s\) could not be delivered .* pushed on the next start"):
        run_agent(agent)
    with Spool(tmp_path / "agent" / "spool.sqlite") as spool:
        assert spool.counts() == SpoolCounts(pending=1, dead=0)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://127.0.0.1:99999", "not a port number"),
        ("http://127.0.0.1:0", "not a port number"),
        ("http://:8700", "names no host"),
        ("ftp://collector:8700", "must start with http"),
    ],
)
def test_a_collector_url_that_can_reach_nothing_is_refused_at_once(url, problem):
    for client in (AgentClient, CollectorClient):
        with pytest.raises(LatbenchError, match=problem):
            client(url)


@pytest.mark.slow
def test_an_agent_killed_mid_measurement_settles_its_leases_when_it_starts_again(collector, tmp_path):
    """Real processes: SIGKILL while measuring one of three leased jobs; the next start fails that one job once
    (the reason says why) and hands the other two back at once, none of them left to expire."""
    long = QUICK.model_copy(update={"min_time_s": 60.0, "max_time_s": 60.0})
    token, _ = campaign(collector, settings=long)
    state = tmp_path / "killed"
    first = Agent(collector, token, "killed", state, "--max-jobs", "3")
    try:
        wait_for(lambda: (state / HELD_FILE).exists() and json.loads((state / HELD_FILE).read_text())["measuring"],
                 60, "a job being measured")  # fmt: skip
    finally:
        first.stop(signal.SIGKILL)  # the fault under test; on a failure, no agent is left behind either
    second = Agent(collector, token, "killed", state, "--max-jobs", "1")
    try:
        wait_for(lambda: "held when the agent stopped last" in second.log.read_text(), 60, "the leases settled")
        wait_for(lambda: _jobs(collector)[0][0] == 1, 60, "the killed job's error result")
    finally:
        assert second.stop(signal.SIGTERM, timeout_s=30) == 0, second.log.read_text()[-3000:]
    jobs = _jobs(collector)
    assert [(errors, expirations) for errors, expirations, _ in jobs] == [(1, 0), (0, 0), (0, 0)], jobs
    assert jobs[0][2] == KILLED_WHILE_MEASURING
    assert "released 2 lease(s) held when the agent stopped last" in second.log.read_text()


def _jobs(collector: Collector) -> list[tuple[int, int, str | None]]:
    """(errors, expirations, last error) of every job, most errors first, read from the collector's store."""
    assert collector.db_url is not None
    db = sqlite3.connect(collector.db_url.removeprefix("sqlite:///"))
    try:
        return db.execute("SELECT errors, expirations, last_error FROM jobs ORDER BY errors DESC").fetchall()
    finally:
        db.close()


def test_a_state_dir_that_cannot_take_an_artifact_stops_the_agent_and_hands_the_job_back(
    collector_script, tmp_path, conv_model
):
    """The agent's own disk is at fault, not the job: no error result (it would count against the job, and the
    agent would fail its device's whole queue one job after another), the lease released, the agent stopped."""
    model = conv_model.read_bytes()
    sha = hashlib.sha256(model).hexdigest()
    grant = {"jobs": [job("j1", sha).model_dump(mode="json"), job("j2", sha).model_dump(mode="json")],
             "retry_after_s": 0}  # fmt: skip
    collector_script.script("/v1/leases", Reply.json(200, grant), Reply.json(200, NO_JOBS))
    collector_script.script(f"/v1/artifacts/{sha}", Reply(200, model, "application/octet-stream"))
    agent = make_agent(collector_script.url, tmp_path, max_jobs=2)
    artifacts = tmp_path / "agent" / "artifacts"
    shutil.rmtree(artifacts)
    artifacts.write_text("not a directory")  # every file stored there fails, as on a full or read-only disk
    with pytest.raises(LocalStorageError, match=r"cannot store artifact"):
        run_agent(agent)
    assert not pushed(collector_script)
    [released] = collector_script.requests_to("/v1/leases/release")
    assert sorted(json.loads(released.body)["lease_ids"]) == ["lease-j1", "lease-j2"]
    assert not (tmp_path / "agent" / HELD_FILE).exists()
