"""Artifact files kept in the store, so that any collector replica serves any artifact without a shared
filesystem: the store holds every built or uploaded file in chunks (``artifact_blobs``), written in the same
transaction that makes the artifact leasable, and each replica's artifacts directory is a cache of them, filled
on the first download of a file it lacks, bounded by size (``evict``: least recently used first).

``latbench collector prune`` (``latbench.collectors.prune``) deletes the files no campaign still needs: their rows
stay (results name their SHA-256) with no ``file_name`` (``PRUNED``), and each replica's builder removes them from
its directory too (``forget``).

Chunks of ``CHUNK_BYTES`` keep every row small on both stores (SQLite's default limit on one value is 1 GB,
PostgreSQL's ``bytea`` takes long to handle whole) and let a file be copied in and out without holding it in
memory. A file is stored once per content hash, whichever key or upload it belongs to.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import tempfile
from collections.abc import Collection
from pathlib import Path

from sqlalchemy import and_, delete, exists, select
from sqlalchemy.orm import Session

from latbench.agents.downloads import evict_lru
from latbench.collectors.db import Store, insert_new
from latbench.collectors.models import ArtifactBlobRow, ArtifactRow
from latbench.errors import ArtifactError
from latbench.hashing import sha256_file

CHUNK_BYTES = 1 << 20
PRUNED = and_(ArtifactRow.sha256.is_not(None), ArtifactRow.file_name.is_(None))
"""An artifact whose file was pruned: neither the store nor a cache keeps it, its row (and hash) stays."""
WANTED = and_(PRUNED, ArtifactRow.built_at.is_(None))
"""A pruned artifact asked for again (by a new campaign, or an agent's download): the builder makes it anew."""
FRESH_S = 60.0
"""A cached file used this recently is never evicted, however full the cache: a request may be about to send it."""


def held(session: Session, sha256: str) -> bool:
    return session.scalar(select(exists().where(ArtifactBlobRow.sha256 == sha256))) or False


def put(session: Session, sha256: str, path: Path) -> None:
    """Keep the file at ``path``, whose content hashes to ``sha256``, unless the store has it already; a replica
    storing the same file at the same time is no conflict (same key, same bytes)."""
    if held(session, sha256):
        return
    with path.open("rb") as source:
        for part in itertools.count():
            data = source.read(CHUNK_BYTES)
            if not data and part:
                return
            insert_new(session, ArtifactBlobRow, [{"sha256": sha256, "part": part, "data": data}])


def fetch(session: Session, sha256: str, path: Path) -> bool:
    """Write the stored file ``sha256`` to ``path`` (beside it first, then moved into place whole); say whether
    the store has it. Raises ``ArtifactError`` if the stored bytes no longer hash to ``sha256``."""
    if not held(session, sha256):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    partial = Path(name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for part in itertools.count():
                data = session.scalar(
                    select(ArtifactBlobRow.data).where(ArtifactBlobRow.sha256 == sha256, ArtifactBlobRow.part == part)
                )
                if data is None:
                    break
                digest.update(data)
                out.write(data)
        if digest.hexdigest() != sha256:
            raise ArtifactError(f"the store's copy of artifact {sha256} is damaged: it hashes to {digest.hexdigest()}")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return True


def backfill(store: Store, root: Path) -> int:
    """Keep in the store the files of artifacts recorded before it kept them (revision 0006), where ``root`` has
    them intact, one transaction each (a long backfill never holds SQLite's write lock for long); return how many
    were stored."""
    with store.read() as session:
        missing = session.execute(
            select(ArtifactRow.sha256, ArtifactRow.file_name)
            .where(ArtifactRow.sha256.is_not(None), ArtifactRow.file_name.is_not(None))
            .where(~exists().where(ArtifactBlobRow.sha256 == ArtifactRow.sha256))
        ).all()
    stored = 0
    for sha256, file_name in dict(missing).items():
        path = root / str(file_name)
        if sha256 is None or not path.is_file() or sha256_file(path) != sha256:
            continue
        with store.write() as session:
            put(session, sha256, path)
        stored += 1
    return stored


def delete_files(session: Session, sha256s: Collection[str]) -> None:
    """Delete the stored files ``sha256s`` (every chunk)."""
    if sha256s:
        session.execute(delete(ArtifactBlobRow).where(ArtifactBlobRow.sha256.in_(sha256s)))


def cached(root: Path) -> list[Path]:
    """Every complete file of the artifacts directory ``root``, in its subdirectories too (uploads): files and
    directories a write in progress names with a leading dot are left out."""
    found = []
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = [name for name in subdirectories if not name.startswith(".")]
        found += [Path(directory, name) for name in files if not name.startswith(".")]
    return found


def evict(root: Path, max_bytes: int, keep: Path | None = None) -> list[Path]:
    """Keep the artifacts directory ``root`` within ``max_bytes``, deleting its least recently used files (every
    one is in the store, and copied back when asked for), but ``keep`` and those used in the last ``FRESH_S``."""
    return evict_lru(cached(root), max_bytes, keep, FRESH_S)


def pruned(session: Session) -> set[str]:
    """The key digests of the pruned artifacts not asked for again, whose files no cache should keep."""
    return set(session.scalars(select(ArtifactRow.key_digest).where(PRUNED, ArtifactRow.built_at.is_not(None))))


def files_of(root: Path, digests: Collection[str]) -> list[Path]:
    """The files in the artifacts directory ``root`` of the artifacts ``digests``: a file is named by its
    artifact's key digest (an upload's is its SHA-256) up to the first dot, a built one's manifest too."""
    return [path for path in cached(root) if path.name.split(".", 1)[0] in digests] if digests else []


def forget(session: Session, root: Path) -> list[tuple[Path, int]]:
    """Delete the files of pruned artifacts from the artifacts directory ``root``; return each with its size."""
    removed = []
    for path in files_of(root, pruned(session)):
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append((path, size))
    return removed
