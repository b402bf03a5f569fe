"""The quickstart's agent process: its secrets stay out of its command line, which every user sees in ``ps``."""

from __future__ import annotations

import time
from pathlib import Path

from latbench.quickstart import embedded
from tests.support.ports import free_port


def test_the_agent_gets_its_enrollment_token_from_its_environment_not_its_command_line(tmp_path: Path) -> None:
    token = "lb_enroll_0123456789abcdef_quickstart-test-secret"
    url = f"http://127.0.0.1:{free_port()}"
    with embedded.agent(url, token, tmp_path / "agent", tmp_path / "agent.log") as proc:
        deadline = time.monotonic() + 10
        while not (cmdline := Path(f"/proc/{proc.pid}/cmdline").read_bytes()) and time.monotonic() < deadline:
            time.sleep(0.05)  # the child's command line is filled in once it has started
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0")
    assert token.encode() not in cmdline and b"agent\0run" in cmdline
    assert f"LATBENCH_TOKEN={token}".encode() in environ
