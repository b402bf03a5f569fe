"""An agent's own state dir failing it: unreadable spool rows, a damaged spool, a full or read-only disk, a state
dir that cannot be made, a heartbeat that meets an unexpected error. The agent's fault, never a job's, and always
one line that names the file and says what to do."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from latbench.agents.client import AgentClient
from latbench.agents.daemon import AgentDaemon, run_agent
from latbench.agents.downloads import DownloadCache
from latbench.agents.heartbeat import Heartbeat, Leases
from latbench.agents.identity import make_state_dir
from latbench.agents.reports import runtime_offer
from latbench.agents.spool import Spool, SpoolCounts
from latbench.errors import LocalStorageError
from latbench.protocol import ResultItem
from tests.agents.factories import result
from tests.agents.scripted_server import Reply, Request, ScriptedServer
from tests.support.processes import LATBENCH, env

ENROLLED = {"agent_id": "a-1", "agent_token": "agent-token", "device_id": "d-1", "device_name": "desk",
            "heartbeat_interval_s": 0.2, "lease_ttl_s": 5.0}  # fmt: skip
TRUNCATED = "UPDATE results SET body = substr(body, 1, 200) WHERE seq = ?"
NEWER = """UPDATE results SET body = substr(body, 1, length(body) - 1) || ',"energy_mj":1.0}' WHERE seq = ?"""
"""A row as a newer agent writes it: one field more than this agent's ``ResultItem`` (``extra="forbid"``) allows."""


def spool_of(path: Path, count: int) -> list[ResultItem]:
    items = [result(f"job-{i}") for i in range(count)]
    with Spool(path) as spool:
        for item in items:
            spool.add(item)
    return items


def damage(path: Path, sql: str, *seqs: int) -> None:
    db = sqlite3.connect(path)
    with db:
        db.executemany(sql, [(seq,) for seq in seqs])
    db.close()


def stored(request: Request) -> Reply:
    results = json.loads(request.body)["results"]
    return Reply.json(
        200, {"acks": [{"result_id": r["result_id"], "status": "stored", "message": ""} for r in results]}
    )


@pytest.fixture
def collector_script() -> Iterator[ScriptedServer]:
    """Enrolls, renews nothing, has no work, stores every result."""
    with ScriptedServer() as server:
        server.script("/v1/enroll", Reply.json(200, ENROLLED))
        server.script(
            "/v1/heartbeat", Reply.json(200, {"renewed": [], "lost": [], "expires_at": "2030-01-01T00:00:00Z"})
        )
        server.script("/v1/leases", Reply.json(200, {"jobs": [], "retry_after_s": 0.05}))
        server.script("/v1/leases/release", Reply.json(200, {"released": [], "ignored": []}))
        server.script("/v1/results", stored)
        yield server


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real filesystem of 256 KiB (tmpfs), so that a full or read-only disk is the kernel's own ENOSPC or EROFS;
    mounting needs root, elsewhere the test is skipped."""
    where = tmp_path / "disk"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(where)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def read_only(where: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LATBENCH, *args], capture_output=True, text=True, timeout=120, env=env())


# --- F4: a spool row this agent cannot read ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "why"), [(TRUNCATED, "Invalid JSON"), (NEWER, "energy_mj")], ids=["truncated", "newer"]
)
def test_an_unreadable_row_becomes_a_dead_letter_and_the_results_behind_it_stay_pending(tmp_path, caplog, sql, why):
    path = tmp_path / "spool.sqlite"
    items = spool_of(path, 3)
    damage(path, sql, 1)
    with Spool(path) as spool:
        assert spool.pending(10) == items[1:]
        assert spool.pending(10) == items[1:]
        assert spool.counts() == SpoolCounts(pending=2, dead=1)
        [(unreadable, reason)] = spool.dead_letters()
    assert unreadable is None and reason.startswith("unreadable spool row: ") and why in reason
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]  # said once, not at every push
    assert str(path) in warning.getMessage() and why in warning.getMessage()


def test_a_whole_batch_of_unreadable_rows_does_not_hide_the_results_behind_it(tmp_path):
    path = tmp_path / "spool.sqlite"
    items = spool_of(path, 5)
    damage(path, TRUNCATED, 1, 2, 3)
    with Spool(path) as spool:
        assert spool.pending(2) == items[3:]
        assert spool.counts() == SpoolCounts(pending=2, dead=3)


@pytest.mark.slow  # a whole agent run
def test_an_agent_pushes_the_results_behind_an_unreadable_row_and_serves_on(collector_script, tmp_path):
    path = tmp_path / "agent" / "spool.sqlite"
    items = spool_of(path, 4)
    damage(path, NEWER, 2)
    agent = AgentDaemon(collector_script.url, [runtime_offer("onnxruntime")], state_dir=tmp_path / "agent",
                        enrollment_token="enroll-token", max_idle_s=0.5, poll_s=0.05)  # fmt: skip
    run_agent(agent)
    pushed = [
        r["result_id"] for q in collector_script.requests_to("/v1/results") for r in json.loads(q.body)["results"]
    ]
    assert pushed == [str(items[i].result_id) for i in (0, 2, 3)]
    assert collector_script.requests_to("/v1/leases")  # it went on to ask for work
    with Spool(path) as spool:
        assert spool.counts() == SpoolCounts(pending=0, dead=1)


@pytest.mark.slow  # a CLI process
def test_requeue_through_the_cli_takes_an_unreadable_dead_letter_along(tmp_path):
    """An upgraded agent may read the row again, so requeue puts it back; an agent that cannot sets it aside again."""
    path = tmp_path / "spool.sqlite"
    items = spool_of(path, 2)
    damage(path, NEWER, 1)
    with Spool(path) as spool:
        assert spool.pending(10) == items[1:]
    done = cli("agent", "requeue", "--state-dir", str(tmp_path), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"requeued": 1, "pending": 2}
    with Spool(path) as spool:
        assert spool.pending(10) == items[1:]
        assert spool.counts() == SpoolCounts(pending=1, dead=1)


# --- F6: a spool that cannot be opened or written ----------------------------------------------------------


def garble_header(path: Path) -> None:
    with path.open("r+b") as f:
        f.write(hashlib.sha256(b"not sqlite").digest() * 128)


def truncate_half(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


@pytest.mark.parametrize(("harm", "cause"), [(garble_header, "file is not a database"),
                                              (truncate_half, "database disk image is malformed")])  # fmt: skip
def test_a_damaged_spool_is_refused_in_one_line_that_says_how_to_set_it_aside(tmp_path, harm, cause):
    path = tmp_path / "spool.sqlite"
    with Spool(path) as spool:
        for i in range(100):
            spool.add(result(f"job-{i}", times_ms=[1.0] * 300, stats=None, error="x"))
    harm(path)
    with pytest.raises(LocalStorageError) as refused, Spool(path) as spool:
        spool.pending(1000)
    message = str(refused.value)
    assert f"the spool {path} is damaged ({cause})" in message and "\n" not in message
    assert f"move it and the spool.sqlite-wal and spool.sqlite-shm beside it out of {tmp_path}" in message
    assert path.exists()  # never deleted behind the operator's back
    with pytest.raises(LocalStorageError):
        Spool(path)  # not "in use by another process": the failed open released its lock


@pytest.mark.slow  # CLI processes
def test_the_cli_says_a_spool_is_damaged_in_one_line_not_as_an_internal_error(tmp_path):
    spool_of(tmp_path / "spool.sqlite", 2)
    garble_header(tmp_path / "spool.sqlite")
    for args in (["agent", "run", "--collector", "http://127.0.0.1:9"], ["agent", "requeue"]):
        done = cli(*args, "--state-dir", str(tmp_path))
        assert done.returncode == 1
        assert done.stderr.startswith(f"error: the spool {tmp_path / 'spool.sqlite'} is damaged"), done.stderr
        assert "internal error" not in done.stderr


def test_a_lock_file_that_cannot_be_opened_names_it(tmp_path):
    (tmp_path / "spool.sqlite.lock").mkdir()
    with pytest.raises(LocalStorageError, match=f"cannot lock the spool with {tmp_path / 'spool.sqlite.lock'}: "):
        Spool(tmp_path / "spool.sqlite")


def test_a_full_disk_while_spooling_says_so_and_keeps_what_was_spooled(small_disk):
    path = small_disk / "spool.sqlite"
    added = 0
    with Spool(path) as spool:
        with pytest.raises(LocalStorageError) as refused:
            for i in range(1000):
                spool.add(result(f"job-{i}", times_ms=[1.0] * 500, stats=None, error="x"))
                added += 1
        assert spool.counts().pending == added > 0
    assert str(refused.value) == (
        f"cannot write the spool {path}: database or disk is full; free space there and start the agent again "
        "(its results so far stay in it)"
    )


def test_a_read_only_state_dir_is_named_with_what_to_do(small_disk):
    spool_of(small_disk / "spool.sqlite", 1)
    read_only(small_disk)
    with pytest.raises(LocalStorageError, match="Read-only file system; make it writable by the user the agent"):
        Spool(small_disk / "spool.sqlite")


# --- F6: downloads into the agent's own cache ---------------------------------------------------------------

MODEL = os.urandom(300_000)
SHA = hashlib.sha256(MODEL).hexdigest()


@pytest.fixture
def artifact_server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        server.script(f"/v1/artifacts/{SHA}", Reply(200, MODEL, "application/octet-stream"))
        yield server


def test_a_full_disk_is_the_agents_fault_not_the_artifacts(artifact_server, small_disk):
    cache = DownloadCache(small_disk, AgentClient(artifact_server.url, "tok"))
    with pytest.raises(LocalStorageError) as refused:
        cache.fetch(SHA, "onnx")
    assert str(refused.value) == (
        f"cannot store artifact {SHA} in {small_disk}: No space left on device; free space there and start the "
        "agent again"
    )
    assert os.listdir(small_disk) == []


def test_a_read_only_cache_is_the_agents_fault(artifact_server, small_disk):
    cache = DownloadCache(small_disk, AgentClient(artifact_server.url, "tok"))
    read_only(small_disk)
    with pytest.raises(LocalStorageError, match=f"in {small_disk}: Read-only file system; make it writable"):
        cache.fetch(SHA, "onnx")


def test_a_cache_dir_that_is_gone_fails_the_agent_not_the_job(artifact_server, tmp_path):
    """``mkstemp`` itself failing: the directory was removed under the running agent."""
    cache = DownloadCache(tmp_path / "artifacts", AgentClient(artifact_server.url, "tok"))
    (tmp_path / "artifacts").rmdir()
    with pytest.raises(LocalStorageError, match=f"cannot store artifact {SHA} in {tmp_path / 'artifacts'}: "):
        cache.fetch(SHA, "onnx")


@pytest.mark.slow  # a process with its own file-size limit
def test_an_artifact_over_the_file_size_limit_stays_the_jobs_failure(artifact_server, tmp_path):
    """A limit that only larger artifacts meet: stopping the agent for it would hand the job to it again."""
    code = (
        "import resource, sys\nfrom pathlib import Path\n"
        "from latbench.agents.client import AgentClient\nfrom latbench.agents.downloads import DownloadCache\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.RLIM_INFINITY))\n"
        "DownloadCache(Path(sys.argv[2]), AgentClient(sys.argv[1], 'tok')).fetch(sys.argv[3], 'onnx')\n"
    )
    done = subprocess.run([sys.executable, "-c", code, artifact_server.url, str(tmp_path), SHA],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert "latbench.errors.ArtifactError: cannot store artifact" in done.stderr, done.stderr
    assert "File too large (this machine's file-size limit)" in done.stderr
    assert os.listdir(tmp_path) == []


# --- item 7: a state dir that cannot be made ---------------------------------------------------------------


def test_a_state_dir_that_cannot_be_made_is_one_clear_line(tmp_path):
    (tmp_path / "file").touch()
    with pytest.raises(LocalStorageError, match=r"state dir .*/file: it is a file; give another --state-dir"):
        make_state_dir(tmp_path / "file")
    with pytest.raises(LocalStorageError, match=r"state dir .*/file/st: a directory above it is a file"):
        make_state_dir(tmp_path / "file" / "st")
    assert make_state_dir(tmp_path / "new" / "st").is_dir()
    assert (tmp_path / "new" / "st").stat().st_mode & 0o777 == 0o700


@pytest.mark.slow  # a CLI process
def test_the_cli_refuses_a_state_dir_that_is_a_file_in_one_line(tmp_path):
    (tmp_path / "file").touch()
    done = cli("agent", "run", "--collector", "http://127.0.0.1:9", "--state-dir", str(tmp_path / "file"))
    assert done.returncode == 1
    assert done.stderr == (
        f"error: cannot make the state dir {tmp_path / 'file'}: it is a file; give another --state-dir\n"
    )


# --- F7: the heartbeat thread ------------------------------------------------------------------------------


def test_the_heartbeat_survives_an_unexpected_error_and_says_so_once(caplog):
    """A token no HTTP header can carry makes every beat fail before it is sent (``UnicodeEncodeError``); the
    thread logs it once, keeps beating, and renews again once the token is replaced (a re-enrollment)."""
    with ScriptedServer() as server:
        server.script("/v1/heartbeat", Reply.json(200, {"renewed": ["l-1"], "lost": [],
                                                        "expires_at": "2030-01-01T00:00:00Z"}))  # fmt: skip
        leases = Leases()
        leases.add(["l-1"])
        heartbeat = Heartbeat(AgentClient(server.url, "t\u00f6ken"), leases, interval_s=0.02)
        heartbeat.start()
        try:
            deadline = time.monotonic() + 10
            while len([r for r in caplog.records if "heartbeat failed" in r.getMessage()]) < 1:
                assert time.monotonic() < deadline, "no failure logged"
                time.sleep(0.01)
            time.sleep(0.2)  # ten more failing beats
            assert heartbeat.is_alive()
            heartbeat.client.token = "token"
            while not server.requests_to("/v1/heartbeat"):
                assert time.monotonic() < deadline, "the heartbeat did not resume"
                time.sleep(0.01)
        finally:
            heartbeat.stop()
    failures = [r for r in caplog.records if "heartbeat failed" in r.getMessage()]
    assert len(failures) == 1 and "UnicodeEncodeError" in failures[0].getMessage()
    assert server.requests_to("/v1/heartbeat")[0].headers["Authorization"] == "Bearer token"
    assert not [t for t in threading.enumerate() if t.name == "latbench-heartbeat"]
