"""Real collector and agent processes on loopback, as a user would start them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

LATBENCH = [sys.executable, "-m", "latbench"]
ADMIN_TOKEN = "lb_admin_e2e-test-token-0123456789abcdef"


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "LATBENCH_ADMIN_TOKEN": ADMIN_TOKEN, "COLUMNS": "160", **extra}


class Collector:
    """``latbench collector serve`` in a subprocess; restartable on the same port, store and data dir.

    ``db_url`` None: the store in the data dir; port 0: the port the system chooses (``url`` is known once started);
    ``admin_token`` None: none in the environment, so the collector makes one on first start.
    """

    def __init__(
        self,
        db_url: str | None,
        data_dir: Path,
        port: int,
        lease_ttl_s: float | None = 30.0,
        artifacts: Path | None = None,
        *extra: str,
        admin_token: str | None = ADMIN_TOKEN,
    ):
        self.db_url, self.data_dir, self.port, self.lease_ttl_s = db_url, data_dir, port, lease_ttl_s
        self.extra = extra
        self.admin_token = admin_token
        self.url = f"http://127.0.0.1:{port}"
        self.artifacts = artifacts
        self.proc: subprocess.Popen[str] | None = None
        self.log = data_dir / "collector.log"
        self.printed = ""
        """What this start printed before it listened (the admin token it made, the listening line)."""

    def start(self, timeout_s: float = 60.0) -> Collector:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = ["collector", "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)]
        if self.db_url:
            args += ["--db", self.db_url]
        if self.lease_ttl_s is not None:
            args += ["--lease-ttl", str(self.lease_ttl_s)]
        if self.artifacts:
            args += ["--artifacts-dir", str(self.artifacts)]
        args += self.extra
        environ = {k: v for k, v in env().items() if k != "LATBENCH_ADMIN_TOKEN"}
        if self.admin_token is not None:
            environ["LATBENCH_ADMIN_TOKEN"] = self.admin_token
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("a") as log:
            self.proc = subprocess.Popen([*LATBENCH, *args], stdout=log, stderr=subprocess.STDOUT, env=environ)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.log.open() as log:
                log.seek(offset)
                printed = log.read()
            if match := re.search(r"collector listening on (https?://\S+)", printed):
                self.url, self.printed = match.group(1), printed
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"collector exited with {self.proc.returncode}:\n{printed}")
            time.sleep(0.05)
        raise RuntimeError(f"collector did not listen within {timeout_s} s:\n{self.log.read_text()}")

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def cli(self, *args: str) -> str:
        """Run a management command against this collector; return its stdout (it must succeed)."""
        result = subprocess.run([*LATBENCH, *args, "--collector", self.url], capture_output=True, text=True,
                                env=env(), timeout=120)  # fmt: skip
        assert result.returncode == 0, f"latbench {' '.join(args)} failed:\n{result.stderr}"
        return result.stdout.strip()

    def status(self, campaign_id: str) -> dict:
        response = httpx.get(f"{self.url}/v1/admin/campaigns/{campaign_id}", timeout=10,
                             headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})  # fmt: skip
        response.raise_for_status()
        return response.json()


class Agent:
    """``latbench agent run`` in a subprocess with its own state dir. It does not wait for an idle machine: these
    tests are about the fleet, and the machine running them is rarely idle."""

    def __init__(self, collector: Collector, token: str, name: str, state_dir: Path, *extra: str):
        self.name, self.state_dir = name, state_dir
        self.log = state_dir.parent / f"{name}.log"
        args = ["agent", "run", "--collector", collector.url, "--token", token, "--name", name,
                "--state-dir", str(state_dir), "--no-wait-idle", *extra]  # fmt: skip
        with self.log.open("a") as log:
            self.proc = subprocess.Popen([*LATBENCH, *args], stdout=log, stderr=subprocess.STDOUT, env=env())

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout_s)


def children(pid: int) -> list[int]:
    """The running child processes of ``pid`` (a collector's workers), from Linux's ``/proc``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def wait_for(predicate, timeout_s: float, what: str, interval_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def totals(status: dict) -> dict[str, int]:
    keys = ("queued", "leased", "done", "failed", "total")
    return {k: sum(d[k] for d in status["devices"]) for k in keys}
