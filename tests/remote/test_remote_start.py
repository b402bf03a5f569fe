"""Starting against a remote device, through a real sshd: a device still booting is waited for (and said so), one
that stays down fails in one line; a login without a key and a malformed host key pin say what is wrong."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time

import pytest

from latbench.agents.measure import TimingSettings
from latbench.agents.remote import open_runner
from latbench.errors import HostUnreachable, RemoteError
from tests.support.processes import LATBENCH, env
from tests.support.sshd import sshd_server, start_server, stop_server

pytestmark = pytest.mark.slow  # a real sshd

FAST = TimingSettings(warmup_runs=2, warmup_time_s=0.02, min_runs=10, min_time_s=0.05, max_attempts=1)


def test_a_device_still_booting_is_waited_for_then_measured(conv_model, caplog):
    with sshd_server() as server:
        stop_server(server)
        threading.Timer(3.0, start_server, args=(server,)).start()  # the board finishes booting
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="latbench.agent"):
            runner = open_runner(server.url, command=sys.executable, key_file=server.user_key,
                                 known_hosts=server.known_hosts, wait_s=120)  # fmt: skip
        with runner:
            m, _ = runner.measure(conv_model, "onnxruntime", settings=FAST)
        assert m.stats.runs >= FAST.min_runs
        assert time.monotonic() - started >= 2.5
        assert any("cannot reach" in r.message and "trying again in" in r.message for r in caplog.records)


def test_a_device_that_stays_down_fails_in_one_line_once_the_wait_is_spent():
    with sshd_server() as server:
        stop_server(server)
        started = time.monotonic()
        with pytest.raises(HostUnreachable) as down:
            open_runner(server.url, key_file=server.user_key, known_hosts=server.known_hosts, wait_s=3)
        assert 3 <= time.monotonic() - started < 30
        assert str(down.value).startswith(f"cannot reach {server.url}: ")
        assert "(tried for 3 s)" in str(down.value) and "Errno None" not in str(down.value)
        start_server(server)


def test_no_key_to_log_in_with_is_said_as_such(sshd, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh keys
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)  # no ssh-agent
    with pytest.raises(RemoteError, match=r"no key to log in with: give --key FILE") as refused:
        open_runner(sshd.url, known_hosts=sshd.known_hosts)
    assert "cannot reach" not in str(refused.value)


@pytest.mark.parametrize("command", [["agent", "run"], ["deploy"]])
def test_a_malformed_host_key_pin_is_a_usage_error(sshd, tmp_path, command):
    target = ["--remote", sshd.url] if command == ["agent", "run"] else [sshd.url]
    done = subprocess.run(
        [*LATBENCH, *command, *target, "--collector", "http://127.0.0.1:9", "--host-key-fingerprint", "KYmBLbLL",
         "--known-hosts", str(tmp_path / "kh")],
        capture_output=True, text=True, timeout=60, env={**env(), "LATBENCH_TOKEN": "lb_enroll_x"},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "'KYmBLbLL' is not a host key fingerprint" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "kh").exists()
