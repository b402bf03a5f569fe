"""A consistent copy of a running collector's store, for ``latbench collector backup``.

A SQLite store runs in WAL mode: its newest pages, often the whole schema and every row, sit in the ``-wal`` file
until a checkpoint, so copying ``collector.sqlite`` while the collector runs gives a database without tables.
``backup`` copies it with SQLite's online backup API instead, in one read transaction: a snapshot as of one
commit, taken while the collector goes on writing (WAL readers never block the writer). A PostgreSQL store is
dumped with ``pg_dump``, which does the same for it.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sqlite3
from pathlib import Path

import sqlalchemy as sa

from latbench.collectors.db import BUSY_TIMEOUT_S
from latbench.errors import LatbenchError


class BackupUnsupported(LatbenchError):
    """A store this command does not copy itself (PostgreSQL): the message gives the command that does."""


def pg_dump_command(db_url: str, out: Path) -> str:
    """The ``pg_dump`` line that backs up the PostgreSQL store at ``db_url`` (its password left out: ``pg_dump``
    reads ``PGPASSWORD`` or ``~/.pgpass`` as the collector does)."""
    url = sa.make_url(db_url)
    plain = sa.URL.create("postgresql", url.username, None, url.host, url.port, url.database, url.query)
    return f"pg_dump -Fc -f {shlex.quote(str(out))} {shlex.quote(plain.render_as_string(hide_password=False))}"


def backup(db_url: str, out: Path) -> Path:
    """Copy the SQLite store at ``db_url`` to ``out`` (a new file, mode 0600, one self-contained file without a
    ``-wal``) as of one moment, safely while a collector serves it; return ``out``.

    ``BackupUnsupported`` for a PostgreSQL store (the message says how to dump it), ``LatbenchError`` for a store
    that does not exist or an ``out`` that does. Restore by stopping the collector and putting the copy in the
    store's place (``collector.sqlite``, with no ``-wal`` or ``-shm`` file of the old store beside it). The store
    is opened for writing (never written: a stopped store's last connection then folds its ``-wal`` in and removes
    it, where a read-only one would leave empty ones behind).
    """
    try:
        url = sa.make_url(db_url)
    except sa.exc.ArgumentError:
        raise LatbenchError(f"not a database URL: {db_url!r}") from None
    if url.get_backend_name() == "postgresql":
        raise BackupUnsupported(f"back up a PostgreSQL store with pg_dump: {pg_dump_command(db_url, out)}")
    if url.get_backend_name() != "sqlite" or not url.database:
        raise LatbenchError(f"cannot back up {db_url!r}: give a SQLite store (sqlite:///FILE) or a data dir")
    source = Path(url.database)
    if not source.is_file():
        raise LatbenchError(f"no collector store at {source}")
    if out.exists():
        raise LatbenchError(f"{out} exists already; give a new file")
    partial = out.with_name(f".{out.name}.partial")
    try:
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
        store = sqlite3.connect(f"{source.as_uri()}?mode=rw", uri=True, timeout=BUSY_TIMEOUT_S)
        with contextlib.closing(store) as src, contextlib.closing(sqlite3.connect(partial)) as dst:
            src.backup(dst)  # every page in one step: one read transaction, so one consistent snapshot
            dst.execute("PRAGMA journal_mode=DELETE")  # a single file, whatever journal the store runs
        os.replace(partial, out)
    except (OSError, sqlite3.Error) as exc:
        raise LatbenchError(f"cannot back up {source} to {out}: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    return out
