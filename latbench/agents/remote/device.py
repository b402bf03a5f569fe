"""The one interface a remote runner needs from a device: copy a file there, run a shell command (or keep one
running), remove files.

SSH and adb each implement it in their own module; everything else (tools, parsing, the runner) is shared.
"""

from __future__ import annotations

import abc
import shlex
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from latbench.agents.remote.session import Session
from latbench.errors import RemoteError


def quote(*args: str) -> str:
    """``args`` as one shell command line."""
    return " ".join(shlex.quote(a) for a in args)


@dataclass(frozen=True)
class Completed:
    """A finished remote command: its exit status and its output (stdout and stderr interleaved)."""

    command: str
    returncode: int
    output: str

    def check(self, what: str) -> str:
        """The output, or a ``RemoteError`` naming ``what`` failed with the output's last lines."""
        if self.returncode != 0:
            tail = "\n".join(self.output.strip().splitlines()[-5:])
            raise RemoteError(f"{what} failed on the device (exit {self.returncode}): {tail or '(no output)'}")
        return self.output


class RemoteDevice(abc.ABC):
    """A machine reached over a channel. ``workdir`` is a directory of its own on the device, created on open and
    removed on ``close``, so nothing a runner uploads outlives it."""

    target: str
    workdir: str

    @abc.abstractmethod
    def put(self, local: Path, remote: str) -> None:
        """Copy ``local`` to the device path ``remote``."""

    @abc.abstractmethod
    def exec(self, command: str, timeout_s: float = 600.0) -> Completed:
        """Run ``command`` in the device's shell; raise ``RemoteError`` if it cannot be run or times out."""

    @abc.abstractmethod
    def spawn(self, command: str) -> Session:
        """Start ``command`` and keep it running, talking to it line by line."""

    @abc.abstractmethod
    def _disconnect(self) -> None:
        """Close the channel."""

    def path(self, name: str) -> str:
        return f"{self.workdir}/{name}"

    def read(self, remote: str) -> str:
        return self.exec(quote("cat", remote)).check(f"reading {remote}")

    def remove(self, *remote: str) -> None:
        if remote:
            self.exec(quote("rm", "-f", *remote))

    def _make_workdir(self) -> None:
        self.exec(quote("mkdir", "-p", self.workdir)).check(f"creating {self.workdir}")

    def close(self) -> None:
        """Remove the work dir (best effort: the channel may already be gone), then disconnect."""
        try:
            self.exec(quote("rm", "-rf", self.workdir), timeout_s=30)
        except RemoteError:
            pass
        finally:
            self._disconnect()

    def __enter__(self) -> RemoteDevice:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
