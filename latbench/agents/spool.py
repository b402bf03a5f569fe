"""The agent's durable spool: every result is committed here before it is pushed, and removed only once acked.

One SQLite file (WAL, ``synchronous=FULL``: a committed result survives a crash or a power cut) in the agent's
state dir. A result stays pending until the collector acknowledges it with any ack, and is then deleted. A
result the collector rejects outright becomes a dead letter: kept on disk for a person to inspect, never pushed
again. One process at a time: opening takes an exclusive lock on ``<file>.lock``, so a second agent started on
the same state dir fails at once instead of pushing the same results under the same identity.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from uuid import UUID

from latbench.errors import LatbenchError
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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _lock(self.path.with_name(self.path.name + ".lock"))
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()
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
        self._db.execute(
            "INSERT INTO results (result_id, body, spooled_at) VALUES (?, ?, ?)",
            (str(item.result_id), item.model_dump_json(), time.time()),
        )

    def pending(self, limit: int, max_bytes: int | None = None) -> list[ResultItem]:
        """Up to ``limit`` pending results, oldest first, and no more than ``max_bytes`` of JSON (but at least one)."""
        rows = self._db.execute(
            "SELECT body FROM results WHERE dead_reason IS NULL ORDER BY seq LIMIT ?", (limit,)
        ).fetchall()
        items: list[ResultItem] = []
        size = 0
        for (body,) in rows:
            size += len(body)
            if items and max_bytes is not None and size > max_bytes:
                break
            items.append(ResultItem.model_validate_json(body))
        return items

    def ack(self, result_ids: Iterable[UUID]) -> None:
        """Forget results the collector has dealt with (unknown ids are ignored)."""
        self._many("DELETE FROM results WHERE result_id = ?", [(str(r),) for r in result_ids])

    def dead_letter(self, result_ids: Iterable[UUID], reason: str) -> None:
        """Keep these results on disk but never hand them out by ``pending`` again."""
        self._many("UPDATE results SET dead_reason = ? WHERE result_id = ?", [(reason, str(r)) for r in result_ids])

    def dead_letters(self) -> list[tuple[ResultItem, str]]:
        rows = self._db.execute(
            "SELECT body, dead_reason FROM results WHERE dead_reason IS NOT NULL ORDER BY seq"
        ).fetchall()
        return [(ResultItem.model_validate_json(body), reason) for body, reason in rows]

    def requeue_dead(self) -> int:
        """Make every dead letter pending again (once the cause is fixed, a collector's bug say); how many."""
        return self._db.execute("UPDATE results SET dead_reason = NULL WHERE dead_reason IS NOT NULL").rowcount

    def counts(self) -> SpoolCounts:
        pending, dead = self._db.execute(
            "SELECT COUNT(*) - COUNT(dead_reason), COUNT(dead_reason) FROM results"
        ).fetchone()
        return SpoolCounts(pending=pending, dead=dead)

    def _many(self, sql: str, rows: list[tuple[str, ...]]) -> None:
        """One transaction (one fsync) for all ``rows``."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(sql, rows)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
