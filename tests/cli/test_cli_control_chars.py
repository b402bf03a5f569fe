"""What agents sent is printed, never obeyed: an escape sequence in a device's CPU model or in an error result reaches
the admin's terminal escaped (``\\x1b``), not as a command that clears the screen or forges lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from latbench.cli.console import printable
from tests.support.served import MACHINE, Clock, Served, failure, measurement

pytestmark = pytest.mark.slow  # a served collector and the CLI in subprocesses

HOSTILE = "\x1b[2J\x1b[H\x1b]0;owned\x07FAKE: all done\r\nsecond line\x9b31m"


def test_escape_sequences_from_agents_are_printed_escaped(tmp_path: Path, artifact_cache: Path):
    with Served(f"sqlite:///{tmp_path / 'collector.sqlite'}", artifact_cache, Clock()) as collector:
        campaign = collector.campaign(max_failures=1)
        agent = collector.agent("agent-1", device="dev-1", machine={**MACHINE, "cpu_model": HOSTILE})
        first, second = agent.post("/leases", json={"max_jobs": 2}).json()["jobs"]
        pushed = agent.post("/results", json={"results": [failure(first, HOSTILE), measurement(second)]})
        assert pushed.status_code == 200, pushed.text
        for args in (["devices"], ["campaign", "status", campaign]):
            shown = collector.run_cli(*args)
            assert shown.returncode == 0, shown.stderr
            for raw in ("\x1b[2J", "\x1b]0", "\x07", "\r", "\x9b"):
                assert raw not in shown.stdout + shown.stderr, (args, raw)
            assert "\\x1b" in shown.stdout and "owned" in shown.stdout  # shown, escaped
        status = collector.run_cli("campaign", "status", campaign).stdout
        assert "dev-1: 1 job failed:" in status and "\nsecond line" not in status  # the error shown on one line


def test_printable_keeps_text_tabs_and_newlines():
    assert printable("a\tb\nc [red]é😀") == "a\tb\nc [red]é😀"
    assert printable("\x00\x1b\x7f\x85") == "\\x00\\x1b\\x7f\\x85"
