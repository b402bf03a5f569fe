"""The collector's files are its own: the store holds every result and token digest, so its data dir is created
0700 and a SQLite store's files are 0600, whatever the umask (the agent's state dir is kept the same way)."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

import sqlalchemy as sa

SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
"""What SQLite writes beside a store; it gives each the mode of the store's file when it creates it."""
BUILDER_LOCK = ".builder-lock"
"""The artifact builder's lock file beside a SQLite store (``artifact_store``): made here, 0600, so no other local
user can hold the lock and stall every build."""


def private_dir(path: Path) -> Path:
    """``path``, created 0700 (with its missing parents) if it does not exist; an existing one is left as it is
    (replicas may share an artifacts directory on purpose)."""
    if not path.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)  # a mode given to mkdir passes through the umask
    return path


def private_store(db_url: str) -> str:
    """``db_url``, its SQLite file and the builder's lock created empty with mode 0600 if missing, and those and
    the files SQLite keeps beside them (``SQLITE_SIDE_FILES``) made 0600 where they are open to others (a store a
    release before this one created).
    Any other URL, one that does not parse, or a file whose directory is missing is left to the store to judge."""
    try:
        url = sa.make_url(db_url)
    except sa.exc.ArgumentError:
        return db_url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return db_url
    path = Path(url.database)
    lock = path.with_name(path.name + BUILDER_LOCK)
    for made in (path, lock):
        with contextlib.suppress(FileNotFoundError):
            os.close(os.open(made, os.O_WRONLY | os.O_CREAT, 0o600))
    for file in [path, lock, *(path.with_name(path.name + side) for side in SQLITE_SIDE_FILES)]:
        with contextlib.suppress(FileNotFoundError):
            if stat.S_IMODE(file.stat().st_mode) & 0o077:
                os.chmod(file, 0o600)
    return db_url
