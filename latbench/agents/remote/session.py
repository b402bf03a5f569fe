"""A long-lived command on the device that answers one request line with one result line (the stub's ``serve``).

Starting Python and importing an engine on a small device takes seconds; paying that once per session instead
of once per job is most of the SSH runner's overhead. A reader thread turns the command's output into lines,
so waiting for an answer has a timeout whatever the channel (an SSH channel, ``adb shell``'s pipe).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from typing import IO

from latbench.agents.remote.parse import RESULT_MARKER
from latbench.errors import RemoteError

STOP_WAIT_S = 5.0
"""How long closing a session waits for its command to exit once its input ended, before closing the channel or
killing it: the stub exits at once; this bounds a tool that does not."""


class SessionEnded(RemoteError):
    """The command ended before it answered a request, printing nothing: it had died before the request, or died
    during it (the two look the same from here)."""


class Session:
    """Lines in through ``stdin``, lines out of ``stdout``; ``close`` ends the command (and ``on_close`` its
    channel). ``check`` runs when the output ends and raises ``ConnectionLost`` if the channel itself broke, so
    a dropped connection is not taken for a command that ended."""

    def __init__(
        self,
        target: str,
        stdin: IO[bytes],
        stdout: IO[bytes],
        on_close: Callable[[], None],
        check: Callable[[], None] = lambda: None,
    ) -> None:
        self.target = target
        self._stdin = stdin
        self._on_close = on_close
        self._check = check
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._ended = False
        threading.Thread(target=self._read, args=(stdout,), daemon=True, name="latbench-remote-session").start()

    def _read(self, stdout: IO[bytes]) -> None:
        try:
            for raw in stdout:
                self._lines.put(raw.decode(errors="replace"))
        except (OSError, EOFError, ValueError):
            pass
        finally:
            self._lines.put(None)

    @property
    def alive(self) -> bool:
        return not self._ended

    def request(self, line: str, timeout_s: float, first_timeout_s: float | None = None) -> str:
        """Send ``line``; return the output up to and including the next result line, or all the output if the
        command ends first. ``SessionEnded`` if it ended printing nothing (before or during the request). Each
        line is waited for ``timeout_s``, the first ``first_timeout_s`` where given (loading a model)."""
        try:
            self._stdin.write(line.encode() + b"\n")
            self._stdin.flush()
        except (OSError, EOFError, ValueError) as exc:
            self._ended = True
            self._check()
            raise SessionEnded(f"{self.target}: the stub session is gone: {exc}") from None
        output: list[str] = []
        while True:
            wait_s = first_timeout_s if first_timeout_s is not None and not output else timeout_s
            try:
                got = self._lines.get(timeout=wait_s)
            except queue.Empty:
                self.close()
                raise RemoteError(f"{self.target}: the stub did not answer within {wait_s:.0f} s") from None
            if got is None:
                self._ended = True
                self._check()
                if not output:
                    raise SessionEnded(f"{self.target}: the stub session ended")
                return "".join(output)
            output.append(got)
            if got.startswith(RESULT_MARKER):
                return "".join(output)

    def close(self) -> None:
        """End the command: its input ends, which the stub takes as "stop now", even mid-measurement."""
        self._ended = True
        with contextlib.suppress(OSError, EOFError, ValueError):
            self._stdin.close()
        self._on_close()
