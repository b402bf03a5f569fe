"""A real agent measuring through a real sshd, with a real collector, when the device goes away mid-measurement:
its jobs go back to the queue without counting a failure, it leases nothing while the device is away, and it
measures them once the device is back."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from latbench.agents.held import HELD_FILE
from tests.support.ports import free_port
from tests.support.processes import Agent, Collector, totals, wait_for
from tests.support.sshd import Sshd, sshd_server, start_server, stop_server

pytestmark = pytest.mark.slow  # a real sshd, collector and agent; the device is away for a reconnect's tries


@pytest.fixture
def board() -> Iterator[Sshd]:
    with sshd_server() as server:
        yield server


def test_a_device_that_goes_away_hands_its_jobs_back_uncounted_and_measures_them_once_back(
    board: Sshd, tmp_path: Path, artifact_cache: Path
):
    db = tmp_path / "c.sqlite"
    collector = Collector(f"sqlite:///{db}", tmp_path / "data", free_port(), artifacts=artifact_cache).start()
    try:
        token = collector.cli("token", "create")
        campaign = collector.cli("campaign", "create", "--space", "nb201", "--samples", "2", "--seed", "5",
                                 "--runtime", "onnxruntime", "--min-runs", "10", "--min-time", "4",
                                 "--warmup-time", "0.02")  # fmt: skip
        state = tmp_path / "remote-agent"
        agent = Agent(collector, token, "via-ssh", state, "--poll", "0.5", "--max-jobs", "2", "--remote", board.url,
                      "--key", str(board.user_key), "--known-hosts", str(board.known_hosts),
                      "--remote-command", sys.executable)  # fmt: skip
        try:
            wait_for(lambda: (state / HELD_FILE).exists() and '"measuring": "' in (state / HELD_FILE).read_text(),
                     120, "a job measured on the device")  # fmt: skip
            stop_server(board)
            wait_for(lambda: "went back to the queue" in agent.log.read_text(), 120, "the jobs handed back")
            assert totals(collector.status(campaign))["queued"] == 2
            start_server(board)
            wait_for(lambda: totals(collector.status(campaign))["done"] == 2, 180, "both jobs once the device is back")
        finally:
            assert agent.stop() == 0, agent.log.read_text()[-3000:]
        log = agent.log.read_text()
        assert "the remote device answers again" in log and "Traceback" not in log
        with sqlite3.connect(db) as conn:
            counted = conn.execute("SELECT SUM(errors), SUM(expirations) FROM jobs").fetchone()
        assert counted == (0, 0), log[-3000:]
    finally:
        collector.stop()
