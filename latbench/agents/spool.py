"""The agent's durable spool: every result is committed here before it is pushed, and removed only once acked.

One SQLite file (WAL, ``synchronous=FULL``: a committed result survives a crash or a power cut) in the agent's
state dir. A result stays pending until the collector acknowledges it with any ack, and is then deleted. A
result the collector rejects outright becomes a dead letter: kept on disk for a person to inspect, never pushed
again. A row this agent cannot read (damaged, or written by a newer agent with a field this one does not know)
becomes a dead letter too, so it never stops the results behind it. One process at a time: opening takes an
exclusive lock on ``<file>.lock``, so a second agent started on the same state dir fails at once instead of
pushing the same results under the same identity. A file that cannot be opened, read or written (damaged, a full
disk, no permission) raises ``LocalStorageError`` naming it: the agent's fault, never a job's.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from uuid import UUID

from pydantic import ValidationError

from latbench.agents.client import MAX_REASON_CHARS, first_error, printable
from latbench.agents.identity import make_state_dir, storage_error
from latbench.errors import LatbenchError, LocalStorageError
from latbench.protocol import ResultItem

try:
    import fcntl
except ImportError:  # Windows has no flock; one process at a time is then the user's promise
    fcntl = None  # type: ignore[assignment]  # the module or None, checked before each use

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    result_id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    spooled_at REAL NOT NULL,
    dead_reason TEXT
);
"""


UNREADABLE = "unreadable spool row"
"""How the dead reason of a row this agent cannot read begins; ``latbench agent requeue`` after an upgrade to the
agent that wrote it makes it pending again."""

_AS_ERRNO = {
    sqlite3.SQLITE_FULL: errno.ENOSPC,
    sqlite3.SQLITE_READONLY: errno.EROFS,
    sqlite3.SQLITE_PERM: errno.EACCES,
    sqlite3.SQLITE_CANTOPEN: errno.EACCES,
    sqlite3.SQLITE_IOERR: errno.EIO,
}
"""SQLite's result codes for a file it cannot open or write, as the errno whose advice fits (``storage_error``)."""
_DAMAGED = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)

log = logging.getLogger("latbench.agent")


class SpoolLocked(LatbenchError):
    """Another process has the spool open: an agent already runs with this state dir."""


@dataclass(frozen=True)
class SpoolCounts:
    pending: int
    dead: int


def _lock(path: Path) -> int | None:
    if fcntl is None:
        return None
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SpoolLocked(f"{path.parent} is in use by another process (an agent already running there?)") from None
    return fd


SPOOL_FILE = "spool.sqlite"
"""The spool's file in an agent's state dir."""


class Spool:
    """Results waiting for the collector's ack, oldest first."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        make_state_dir(self.path.parent)
        lock = self.path.with_name(self.path.name + ".lock")
        try:
            self._lock_fd = _lock(lock)
        except OSError as exc:
            raise storage_error(f"cannot lock the spool with {lock}", exc) from exc
        try:
            self._db = self._open()
        except BaseException:
            self._unlock()
            raise

    def _open(self) -> sqlite3.Connection:
        with self._guard("open"):
            db = sqlite3.connect(self.path, isolation_level=None)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                db.executescript(SCHEMA)
            except BaseException:
                db.close()
                raise
        return db

    def close(self) -> None:
        self._db.close()
        self._unlock()

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Spool:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def add(self, item: ResultItem) -> None:
        """Commit ``item``; once this returns it survives a crash of the process or the machine."""
        with self._guard("write"):
            self._db.execute(
                "INSERT INTO results (result_id, body, spooled_at) VALUES (?, ?, ?)",
                (str(item.result_id), item.model_dump_json(), time.time()),
            )

    def pending(self, limit: int, max_bytes: int | None = None) -> list[ResultItem]:
        """Up to ``limit`` pending results, oldest first, and no more than ``max_bytes`` of JSON (but at least one).
        Rows that do not parse become dead letters on the way (``UNREADABLE``)."""
        while True:
            with self._guard("read"):
                rows = self._db.execute(
                    "SELECT seq, body FROM results WHERE dead_reason IS NULL ORDER BY seq LIMIT ?", (limit,)
                ).fetchall()
            items: list[ResultItem] = []
            unreadable: dict[int, str] = {}
            size = 0
            for seq, body in rows:
                try:
                    item = ResultItem.model_validate_json(body)
                except ValidationError as exc:
                    unreadable[seq] = printable(first_error(exc), MAX_REASON_CHARS)
                    continue
                size += len(body)
                if items and max_bytes is not None and size > max_bytes:
                    break
                items.append(item)
            if not unreadable:
                return items
            self._set_aside(unreadable)

    def ack(self, result_ids: Iterable[UUID]) -> None:
        """Forget results the collector has dealt with (unknown ids are ignored)."""
        self._many("DELETE FROM results WHERE result_id = ?", [(str(r),) for r in result_ids])

    def dead_letter(self, result_ids: Iterable[UUID], reason: str) -> None:
        """Keep these results on disk but never hand them out by ``pending`` again."""
        self._many("UPDATE results SET dead_reason = ? WHERE result_id = ?", [(reason, str(r)) for r in result_ids])

    def dead_letters(self) -> list[tuple[ResultItem | None, str]]:
        """Each dead letter, oldest first, with its reason; ``None`` for one this agent cannot read."""
        with self._guard("read"):
            rows = self._db.execute(
                "SELECT body, dead_reason FROM results WHERE dead_reason IS NOT NULL ORDER BY seq"
            ).fetchall()
        letters: list[tuple[ResultItem | None, str]] = []
        for body, reason in rows:
            try:
                letters.append((ResultItem.model_validate_json(body), reason))
            except ValidationError:
                letters.append((None, reason))
        return letters

    def requeue_dead(self) -> int:
        """Make every dead letter pending again (once the cause is fixed, a collector's bug say); how many. An
        unreadable row goes back too: the upgraded agent that wrote it reads it, another sets it aside again."""
        with self._guard("write"):
            return self._db.execute("UPDATE results SET dead_reason = NULL WHERE dead_reason IS NOT NULL").rowcount

    def counts(self) -> SpoolCounts:
        with self._guard("read"):
            pending, dead = self._db.execute(
                "SELECT COUNT(*) - COUNT(dead_reason), COUNT(dead_reason) FROM results"
            ).fetchone()
        return SpoolCounts(pending=pending, dead=dead)

    def _set_aside(self, unreadable: dict[int, str]) -> None:
        """Dead-letter rows that do not parse, so that the results behind them are still pushed; said once, here,
        since a dead letter is never read by ``pending`` again."""
        self._many(
            "UPDATE results SET dead_reason = ? WHERE seq = ?",
            [(f"{UNREADABLE}: {reason}", seq) for seq, reason in unreadable.items()],
        )
        log.warning(
            "%d row(s) of the spool %s cannot be read by this agent (%s) and are kept as dead letters; the other "
            "results are pushed (one written by a newer agent: `latbench agent requeue` once upgraded again)",
            len(unreadable), self.path, next(iter(unreadable.values())),
        )  # fmt: skip

    def _many(self, sql: str, rows: Sequence[tuple[object, ...]]) -> None:
        """One transaction (one fsync) for all ``rows``."""
        with self._guard("write"):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(sql, rows)
            except BaseException:
                if self._db.in_transaction:  # SQLite may have rolled back already (a full disk)
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextlib.contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        """SQLite's and the system's errors about the file (damaged, disk full, read-only, no permission) as one
        ``LocalStorageError`` line naming it and what to do; others (a constraint, a bug) pass unchanged."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            code = getattr(exc, "sqlite_errorcode", -1) & 0xFF
            if code in _DAMAGED:
                raise LocalStorageError(
                    f"the spool {self.path} is damaged ({exc}); to start with an empty spool, move it and the "
                    f"{self.path.name}-wal and {self.path.name}-shm beside it out of {self.path.parent} (the results "
                    "in it not yet delivered are then lost to this agent) and start the agent again"
                ) from exc
            if code not in _AS_ERRNO:
                raise
            raise self._storage_error(doing, OSError(_AS_ERRNO[code], str(exc))) from exc
        except OSError as exc:
            raise self._storage_error(doing, exc) from exc

    def _storage_error(self, doing: str, exc: OSError) -> LocalStorageError:
        kept = " (its results so far stay in it)" if doing != "open" else ""
        return storage_error(f"cannot {doing} the spool {self.path}", exc, kept)
