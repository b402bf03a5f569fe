"""The one interface a remote runner needs from a device: copy a file there, run a shell command (or keep one
running), remove files, and open the channel again when it broke.

SSH and adb each implement it in their own module; everything else (tools, parsing, the runner) is shared.
"""

from __future__ import annotations

import abc
import contextlib
import posixpath
import shlex
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from latbench.agents.remote.session import Session
from latbench.errors import RemoteError

OWNER_FILE = ".latbench-owner"
"""In a work dir: the device-side pid of the process that lives exactly as long as the runner's channel (see
``RemoteDevice._make_workdir``). A work dir whose owner is gone was left by a crash or a dropped connection."""

_SWEEP = """for d in {pattern}; do
  [ -d "$d" ] && [ ! -L "$d" ] && [ -O "$d" ] && [ -f "$d/{owner}" ] || continue
  p=$(cat "$d/{owner}")
  kill -0 "$p" 2>/dev/null && ! grep -qs '^State:[[:space:]]*Z' "/proc/$p/status" && continue
  rm -rf "$d"
done"""
"""Remove the work dirs that ``pattern`` matches, are ours, and whose owner ended (gone, or a zombie nobody reaped)."""


class ConnectionLost(RemoteError):
    """The channel to the device broke (not the command's fault): the runner opens it again, see ``reconnect``."""


def quote(*args: str) -> str:
    """``args`` as one shell command line."""
    return " ".join(shlex.quote(a) for a in args)


def new_workdir(parent: str) -> str:
    """A fresh work dir name in ``parent``; ``latbench-*`` is what ``_make_workdir`` sweeps."""
    return f"{parent}/latbench-{uuid.uuid4().hex[:12]}"


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
    mode 0700) and removed on ``close``, so nothing a runner uploads outlives it or is readable by others.

    Operations raise ``ConnectionLost`` when the channel itself broke, ``RemoteError`` when the device answered
    with a failure; ``close`` never raises for a channel that is gone."""

    target: str
    workdir: str
    _keeper: Session | None = None

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
    def _connect(self) -> None:
        """Open the channel again after ``ConnectionLost``, verifying the device as the first time."""

    @abc.abstractmethod
    def _disconnect(self) -> None:
        """Close the channel; never raises."""

    def reconnect(self) -> None:
        """Open the channel again, in a new work dir: after a reboot the old one may be gone, or be someone else's by
        now. The old one is swept once its owner has ended (``_make_workdir``). What the runner had uploaded must be
        uploaded again."""
        self._drop()
        self._connect()
        self.workdir = new_workdir(posixpath.dirname(self.workdir))
        self._make_workdir()

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
        On failure the channel is closed and nothing is removed.

        Then start its owner, a device process that ends with the channel (``cat`` until its input ends) and writes
        its pid to ``OWNER_FILE``, and sweep the work dirs beside this one that are ours (owned by this user, not
        links) and whose owner has ended: a crashed agent or a dropped connection leaves them. A dir without that
        file (older runners, one being made) or whose owner lives is left alone."""
        path = quote(self.workdir)
        try:
            made = self.exec(f"umask 077 && mkdir {path}")
            if made.returncode != 0 and self.exec(f"test -e {path} || test -L {path}").returncode == 0:
                raise RemoteError(
                    f"{self.target}: the work dir {self.workdir} exists already; refusing to use a directory this "
                    "runner did not create (it may be another user's)"
                )
            made.check(f"creating the work dir {self.workdir}")
            owner = quote(self.path(OWNER_FILE))
            self._keeper = self.spawn(f"echo $$ > {owner}.new && mv {owner}.new {owner} && exec cat >/dev/null")
            parent = posixpath.dirname(self.workdir)
            self.exec(_SWEEP.format(pattern=f"{quote(parent)}/latbench-*", owner=OWNER_FILE), timeout_s=60)
        except BaseException:
            self._drop()
            raise

    def _drop(self) -> None:
        """End the owner process and the channel, quietly: they may be gone already."""
        if self._keeper is not None:
            with contextlib.suppress(RemoteError):
                self._keeper.close()
            self._keeper = None
        self._disconnect()

    def close(self) -> None:
        """Remove the work dir (best effort: the channel may already be gone; a dir left behind is swept by the
        next runner on the device), then disconnect. Never raises for a dead channel."""
        try:
            self.exec(quote("rm", "-rf", self.workdir), timeout_s=30)
        except RemoteError:
            pass
        finally:
            self._drop()

    def __enter__(self) -> RemoteDevice:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
