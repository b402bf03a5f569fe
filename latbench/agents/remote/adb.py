"""Android devices over ``adb``: ``adb push`` for files, ``adb shell`` for commands; the same runner as SSH.

Everything else (the tools, the parsers, CPU pinning with ``taskset``) is shared with the SSH runner.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from latbench.agents.remote.device import Completed, ConnectionLost, RemoteDevice, new_workdir
from latbench.agents.remote.session import STOP_WAIT_S, Session
from latbench.errors import RemoteError

DEVICE_TMP = "/data/local/tmp"
"""The one directory every Android device lets the shell user write and execute in. Whatever runs as the shell
user (any ``adb shell``) can read all of it; the work dir in it is still 0700, as on SSH devices, because apps may
pass through it (mode 0771) to a name they know."""

_GONE = re.compile(r"no devices|device .*not found|device offline|unauthorized|no emulators|closed", re.IGNORECASE)
"""What adb says when it cannot reach the device (unplugged, rebooting, not authorized), as opposed to a command
or a copy that failed on it."""


class AdbDevice(RemoteDevice):
    """One Android device (``serial``, or the only one attached) through the ``adb`` executable."""

    def __init__(self, serial: str | None = None, adb: str = "adb", workdir: str | None = None) -> None:
        found = shutil.which(adb)
        if found is None:
            raise RemoteError(f"{adb!r} not found: install Android platform-tools and put adb on PATH")
        self.adb = [found, *(["-s", serial] if serial else [])]
        self.target = f"adb://{serial or ''}"
        self.workdir = workdir or new_workdir(DEVICE_TMP)
        self._make_workdir()

    def _adb(self, args: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                [*self.adb, *args], capture_output=True, text=True, errors="replace", timeout=timeout_s
            )
        except subprocess.TimeoutExpired:
            raise RemoteError(f"{self.target}: adb {args[0]} did not finish within {timeout_s:.0f} s") from None
        except OSError as exc:
            raise RemoteError(f"{self.target}: cannot run adb: {exc}") from None

    def put(self, local: Path, remote: str) -> None:
        done = self._adb(["push", str(local), remote], timeout_s=600)
        if done.returncode != 0:
            error = ConnectionLost if _GONE.search(done.stderr) else RemoteError
            raise error(f"adb push {local.name} to {self.target}:{remote} failed: {done.stderr.strip()}")

    def exec(self, command: str, timeout_s: float = 600.0) -> Completed:
        done = self._adb(["shell", f"{command} 2>&1"], timeout_s)
        if done.returncode != 0 and not done.stdout and done.stderr:  # adb itself failed: no device, unauthorized
            raise ConnectionLost(f"{self.target}: {done.stderr.strip()}")
        return Completed(command, done.returncode, done.stdout)

    def spawn(self, command: str) -> Session:
        try:
            process = subprocess.Popen(
                [*self.adb, "shell", f"{command} 2>&1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
            )
        except OSError as exc:
            raise RemoteError(f"{self.target}: cannot run adb: {exc}") from None
        assert process.stdin is not None and process.stdout is not None

        def close() -> None:  # the command saw its input end: the stub exits at once; a tool gets a moment
            try:
                process.wait(timeout=STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

        return Session(self.target, process.stdin, process.stdout, close, self._check)

    def _check(self) -> None:
        """``ConnectionLost`` unless adb still sees the device (asked when a session's output ended)."""
        state = self._adb(["get-state"], timeout_s=30)
        if state.returncode != 0 or state.stdout.strip() != "device":
            raise ConnectionLost(f"{self.target}: {state.stderr.strip() or state.stdout.strip() or 'gone'}")

    def _connect(self) -> None:
        """adb connects per command: the next command, making the new work dir, finds out."""

    def _disconnect(self) -> None:
        pass
