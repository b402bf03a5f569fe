"""A private collector and a local agent as child processes, the same programs a real deployment runs.

The collector serves a SQLite store on a loopback port the system picks; the agent enrolls with an enrollment
token made for it. Both write their logs to the workspace, and both stop (SIGTERM, then SIGKILL) when the
block ends, also on Ctrl-C, leaving their state on disk for the next run.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from latbench.errors import LatbenchError

LATBENCH = [sys.executable, "-m", "latbench"]
_LISTENING = re.compile(r"collector listening on (http://\S+)")


def device_name() -> str:
    """This host's name, cut to the collector's device-name rule (letters, digits, ``._@:+-``)."""
    name = re.sub(r"[^A-Za-z0-9._@:+-]", "-", socket.gethostname()).strip("-.") or "this-machine"
    return name[:64]


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _stop(proc: subprocess.Popen[bytes], timeout_s: float = 20.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _child(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        # Own process group: the terminal's Ctrl-C reaches only us, and we stop the children in order.
        return subprocess.Popen(
            [*LATBENCH, *args], stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )


@contextlib.contextmanager
def collector(data_dir: Path, admin_token: str, log: Path, port: int = 0, timeout_s: float = 120.0) -> Iterator[str]:
    """Serve a SQLite collector from ``data_dir`` on loopback ``port`` (0: one the system picks); yields its URL."""
    start = log.stat().st_size if log.exists() else 0
    env = {**os.environ, "LATBENCH_ADMIN_TOKEN": admin_token}
    proc = _child(
        ["collector", "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir)], log, env
    )
    try:
        deadline = time.monotonic() + timeout_s
        url = None
        while url is None:
            if proc.poll() is not None:
                raise LatbenchError(f"the embedded collector exited ({proc.returncode}):\n{_tail(log)}")
            if time.monotonic() > deadline:
                raise LatbenchError(f"the embedded collector did not start within {timeout_s:.0f} s:\n{_tail(log)}")
            with log.open("rb") as f:
                f.seek(start)
                found = _LISTENING.search(f.read().decode(errors="replace"))
            url = found.group(1) if found else None
            time.sleep(0.1)
        yield url
    finally:
        _stop(proc)


@contextlib.contextmanager
def agent(
    url: str,
    token: str,
    state_dir: Path,
    log: Path,
    name: str = "quickstart",
    runtime: str = "onnxruntime",
    wait_idle: bool = True,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``latbench agent run`` against ``url`` until the block ends; the device is named after this host.

    The enrollment token goes in the agent's environment (``LATBENCH_TOKEN``), never on its command line, which
    ``ps`` shows every user of the machine."""
    args = ["agent", "run", "--collector", url, "--name", name, "--device-name", device_name(),
            "--state-dir", str(state_dir), "--runtime", runtime,
            "--wait-idle" if wait_idle else "--no-wait-idle"]  # fmt: skip
    proc = _child(args, log, {**os.environ, "LATBENCH_TOKEN": token})
    try:
        yield proc
    finally:
        _stop(proc, timeout_s=60.0)
