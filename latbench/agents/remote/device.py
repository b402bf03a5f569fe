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
    """A machine reached over a channel. ``workdir`` is a directory of its own on the device, created on open (new,
    mode 0700) and removed on ``close``, so nothing a runner uploads outlives it or is readable by others."""

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
        """Make the work dir 0700 in one step (``umask 077``: never readable by others, as models go there), and
        only a new one: a path that exists may be another user's, who could read or swap what is uploaded there.
        On failure the channel is closed and nothing is removed."""
        path = quote(self.workdir)
        try:
            made = self.exec(f"umask 077 && mkdir {path}")
            if made.returncode != 0 and self.exec(f"test -e {path} || test -L {path}").returncode == 0:
                raise RemoteError(
                    f"{self.target}: the work dir {self.workdir} exists already; refusing to use a directory this "
                    "runner did not create (it may be another user's)"
                )
            made.check(f"creating the work dir {self.workdir}")
        except BaseException:
            self._disconnect()
            raise

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
