"""A remote runner survives its connection: a drop (network blip, rebooted board, the per-connection sshd killed)
is reconnected with the host key verified again, a device that stays away is ``DeviceUnreachable`` (never the
job's failure), closing never raises on a dead connection and ends the device's stub at once, and work dirs
left by a crash are swept. Against a real sshd whose per-connection processes the tests kill."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from latbench.agents.measure import TimingSettings
from latbench.agents.remote import open_runner
from latbench.agents.remote.device import OWNER_FILE
from latbench.agents.remote.runner import RemoteRunner
from latbench.agents.remote.ssh import SshDevice, SshTarget
from latbench.errors import DeviceUnreachable, RemoteError
from tests.remote.test_ssh_runner import _other_key_file, _stub_pids
from tests.support.sshd import Sshd, drop_connections, ended, sshd_server, start_server, stop_server, wait_until

pytestmark = pytest.mark.slow  # a real sshd

FAST = TimingSettings(warmup_runs=2, warmup_time_s=0.02, min_runs=10, min_time_s=0.05, max_attempts=1)
QUICK = (0.2, 0.4, 0.8)
"""Reconnect delays for tests: the same tries as the default, sooner."""


@pytest.fixture(scope="module")
def board() -> Iterator[Sshd]:
    """An sshd of this module's own: its tests kill the connections it serves."""
    with sshd_server() as server:
        yield server


def _open(
    server: Sshd, known_hosts: Path | None = None, command: str = sys.executable, delays: tuple[float, ...] = QUICK
) -> RemoteRunner:
    return open_runner(server.url, command=command, key_file=server.user_key,
                       known_hosts=known_hosts or server.known_hosts, reconnect_delays_s=delays)  # fmt: skip


def _in_thread(work: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = work()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _measuring(runner: RemoteRunner) -> None:
    """Wait until the device's stub has the job (started, and past its imports)."""
    wait_until(lambda: len(_stub_pids(runner.device.workdir)) == 1)
    time.sleep(1.5)


def test_a_dropped_connection_is_made_again_and_the_next_job_is_measured(board, conv_model):
    with _open(board) as runner:
        runner.measure(conv_model, "onnxruntime", settings=FAST)
        before = runner.device.workdir
        drop_connections(board)
        m, _ = runner.measure(conv_model, "onnxruntime", settings=FAST)  # was: "Socket is closed", for every job
        assert m.stats.runs >= FAST.min_runs
        assert runner.device.workdir != before  # a new work dir: after a reboot the old path may be anyone's
        assert not Path(before).exists()  # the old one, its owner gone with the connection, was swept
        assert len(_stub_pids(runner.device.workdir)) == 1


def test_a_connection_dropped_mid_measurement_is_measured_again_once_reconnected(board, conv_model):
    slow = TimingSettings(warmup_runs=2, warmup_time_s=0.02, min_runs=10, min_time_s=3.0, max_attempts=1)
    with _open(board) as runner:
        thread, outcome = _in_thread(lambda: runner.measure(conv_model, "onnxruntime", settings=slow))
        _measuring(runner)
        before = runner.device.workdir
        drop_connections(board)
        wait_until(lambda: _stub_pids(before) == [], timeout_s=2)  # the stub saw its input end and stopped at once
        thread.join(60)
        assert "error" not in outcome, outcome
        m, _ = outcome["result"]
        assert m.stats.runs >= slow.min_runs and m.wall_s >= slow.min_time_s


def test_a_device_that_stays_away_is_unreachable_then_measured_once_back(conv_model):
    """Mid-measurement: the job is not at fault, and its error names the lost connection, not the clean-up that
    could not run after it."""
    slow = TimingSettings(warmup_runs=2, warmup_time_s=0.02, min_runs=10, min_time_s=3.0, max_attempts=1)
    with sshd_server() as server, _open(server) as runner:
        thread, outcome = _in_thread(lambda: runner.measure(conv_model, "onnxruntime", settings=slow))
        _measuring(runner)
        stop_server(server)
        thread.join(30)
        error = outcome.get("error")
        assert isinstance(error, DeviceUnreachable), outcome  # was: RemoteError "removing ... failed"
        assert "cannot be reached" in str(error) and "tries to reconnect" in str(error)
        assert "removing" not in str(error)
        with pytest.raises(DeviceUnreachable):  # every operation, until it is back
            runner.machine_info()
        with pytest.raises(DeviceUnreachable):
            runner.ensure_reachable()
        start_server(server)
        runner.ensure_reachable()
        m, _ = runner.measure(conv_model, "onnxruntime", settings=FAST)
        assert m.stats.runs >= FAST.min_runs


def test_a_reconnect_verifies_the_host_key_as_the_first_connection_did(board, conv_model, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text(board.known_hosts.read_text())
    patient = (0.2, 5.0, 5.0)  # a second try would wait 5 s: room for a busy machine's first handshake
    with _open(board, known_hosts=known, delays=patient) as runner:
        runner.measure(conv_model, "onnxruntime", settings=FAST)
        drop_connections(board)
        known.write_text(_other_key_file(tmp_path, board).read_text())  # the device "changed" its key meanwhile
        started = time.monotonic()
        with pytest.raises(DeviceUnreachable, match=r"does not match .*refusing to connect"):
            runner.measure(conv_model, "onnxruntime", settings=FAST)
        assert time.monotonic() - started < sum(patient[:2])  # no further tries: a wrong key is not a blip


def test_closing_after_the_connection_dropped_never_raises(board, conv_model):
    runner = _open(board)
    runner.measure(conv_model, "onnxruntime", settings=FAST)  # a stub session, an SFTP session: both die
    drop_connections(board)
    started = time.monotonic()
    runner.close()  # was: SSHException "SSH session not active", and an agent's SIGTERM ended in exit 1
    assert time.monotonic() - started < 3


def test_closing_mid_measurement_ends_the_device_stub_at_once(board, conv_model):
    """An agent's SIGTERM closes its runner while the device measures: stopping must not wait for the job."""
    long = TimingSettings(warmup_runs=2, warmup_time_s=0.02, min_runs=10, min_time_s=30.0, max_attempts=1)
    runner = _open(board)
    thread, outcome = _in_thread(lambda: runner.measure(conv_model, "onnxruntime", settings=long))
    _measuring(runner)
    stub = _stub_pids(runner.device.workdir)
    started = time.monotonic()
    runner.close()
    assert time.monotonic() - started < 8  # was: 10 s, waiting for the stub to finish its measurement
    wait_until(lambda: all(ended(pid) for pid in stub), timeout_s=10)  # not the 30 s of its measurement
    thread.join(10)
    assert isinstance(outcome.get("error"), RemoteError | DeviceUnreachable), outcome


def test_a_cleanup_that_fails_does_not_mask_the_measurements_error(board, conv_model, tmp_path):
    """The device's tool fails, and then removing the artifact fails too: the job's error is the tool's."""
    fake = tmp_path / "python3"
    fake.write_text(
        "#!/bin/sh\n# stands in for the stub: takes the job, leaves its artifact unremovable, and fails\nread line\n"
        """artifact=$(printf '%s' "$line" | sed 's/.*"artifact": "\\([^"]*\\)".*/\\1/')\n"""
        'rm -f "$artifact" && mkdir "$artifact" && touch "$artifact/x"\necho "boom: the tool broke"\nexit 3\n'
    )
    fake.chmod(0o755)
    with _open(board, command=str(fake)) as runner:
        with pytest.raises(RemoteError, match="printed no result: boom: the tool broke"):  # was: "removing ... failed"
            runner.measure(conv_model, "onnxruntime", settings=FAST)
        workdir = Path(runner.device.workdir)
        assert (workdir / conv_model.name / "x").exists()  # the removal did fail
    assert not workdir.exists()


def test_a_stub_that_dies_on_a_job_is_started_once_more_then_the_job_fails(board, conv_model, tmp_path):
    """It may have died between jobs, which says nothing of this one; dying again fails the job, so a model that
    crashes the device's Python cannot restart the stub for ever."""
    starts = tmp_path / "starts"
    fake = tmp_path / "python3"
    fake.write_text(f"#!/bin/sh\necho started >> {starts}\nread line\nkill -9 $$\n")
    fake.chmod(0o755)
    with _open(board, command=str(fake)) as runner:
        with pytest.raises(RemoteError, match="the stub session ended"):
            runner.measure(conv_model, "onnxruntime", settings=FAST)
        assert starts.read_text().count("started") == 2
        assert runner.device.workdir  # the connection itself was fine: no reconnect
    assert starts.read_text().count("started") == 2


def _crash_while_open(server: Sshd, workdir: Path) -> None:
    """An agent killed with SIGKILL while its device is open: nothing of it runs to remove the work dir."""
    script = (
        "import os, signal, sys\nfrom pathlib import Path\n"
        "from latbench.agents.remote.ssh import SshDevice, SshTarget\n"
        "d = SshDevice.open(SshTarget.parse(sys.argv[1]), key_file=Path(sys.argv[2]), known_hosts=Path(sys.argv[3]), "
        "workdir=sys.argv[4])\nd.exec('sleep 0.5')\nos.kill(os.getpid(), signal.SIGKILL)\n"
    )
    args = [server.url, str(server.user_key), str(server.known_hosts), str(workdir)]
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr
    owner = int((workdir / OWNER_FILE).read_text())
    wait_until(lambda: ended(owner))  # its owner on the device ended with the connection


def test_a_work_dir_left_by_a_crashed_agent_is_swept_by_the_next_runner_and_live_ones_are_kept(board, tmp_path):
    def device(name: str) -> SshDevice:
        return SshDevice.open(SshTarget.parse(board.url), key_file=board.user_key, known_hosts=board.known_hosts,
                              workdir=str(tmp_path / name))  # fmt: skip

    crashed, foreign = tmp_path / "latbench-crashed", tmp_path / "latbench-foreign"
    foreign.mkdir()  # not a runner's (no owner file): never touched
    with device("latbench-live") as live:
        wait_until(lambda: (tmp_path / "latbench-live" / OWNER_FILE).exists())
        _crash_while_open(board, crashed)
        assert crashed.exists()
        with device("latbench-next"):
            assert not crashed.exists()  # was: left on the device for good
            assert Path(live.workdir).exists() and foreign.exists()
