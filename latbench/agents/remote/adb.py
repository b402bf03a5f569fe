"""Android devices over ``adb``: ``adb push`` for files, ``adb shell`` for commands; the same runner as SSH.

Everything else (the tools, the parsers, CPU pinning with ``taskset``) is shared with the SSH runner.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

from latbench.agents.remote.device import Completed, RemoteDevice
from latbench.agents.remote.session import Session
from latbench.errors import RemoteError

DEVICE_TMP = "/data/local/tmp"
"""The one directory every Android device lets the shell user write and execute in. Whatever runs as the shell
user (any ``adb shell``) can read all of it; the work dir in it is still 0700, as on SSH devices, because apps may
pass through it (mode 0771) to a name they know."""


class AdbDevice(RemoteDevice):
    """One Android device (``serial``, or the only one attached) through the ``adb`` executable."""

    def __init__(self, serial: str | None = None, adb: str = "adb", workdir: str | None = None) -> None:
        found = shutil.which(adb)
        if found is None:
            raise RemoteError(f"{adb!r} not found: install Android platform-tools and put adb on PATH")
        self.adb = [found, *(["-s", serial] if serial else [])]
        self.target = f"adb://{serial or ''}"
        self.workdir = workdir or f"{DEVICE_TMP}/latbench-{uuid.uuid4().hex[:12]}"
        self._make_workdir()

    def _adb(self, args: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                [*self.adb, *args], capture_output=True, text=True, errors="replace", timeout=timeout_s
            )
        except subprocess.TimeoutExpired:
            raise RemoteError(f"{self.target}: adb {args[0]} did not finish within {timeout_s:.0f} s") from None

    def put(self, local: Path, remote: str) -> None:
        done = self._adb(["push", str(local), remote], timeout_s=600)
        if done.returncode != 0:
            raise RemoteError(f"adb push {local.name} to {self.target}:{remote} failed: {done.stderr.strip()}")

    def exec(self, command: str, timeout_s: float = 600.0) -> Completed:
        done = self._adb(["shell", f"{command} 2>&1"], timeout_s)
        if done.returncode != 0 and not done.stdout and done.stderr:  # adb itself failed: no device, unauthorized
            raise RemoteError(f"{self.target}: {done.stderr.strip()}")
        return Completed(command, done.returncode, done.stdout)

    def spawn(self, command: str) -> Session:
        process = subprocess.Popen(
            [*self.adb, "shell", f"{command} 2>&1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert process.stdin is not None and process.stdout is not None

        def close() -> None:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

        return Session(self.target, process.stdin, process.stdout, close)

    def _disconnect(self) -> None:
        pass
