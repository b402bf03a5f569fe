"""Artifacts on the agent: fetched once by sha256 into a local cache, verified, and reused while intact.

The cache is in the agent's own state dir, so a file it cannot create, write or read there (a full disk, a
read-only or foreign directory) is the agent's fault, not the job's: ``LocalStorageError``, which stops the agent
and gives the job back uncounted. Counted as the job's failed attempt, it would fail every job of the device one
after another. What is the artifact's own fault (its bytes, its size) stays ``ArtifactError``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from latbench.agents.client import AgentClient
from latbench.agents.identity import storage_error
from latbench.errors import ArtifactError
from latbench.hashing import sha256_file
from latbench.protocol import MAX_ARTIFACT_BYTES

SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_CACHE_BYTES = 2 * 2**30
"""Beyond this the least recently used artifacts are deleted: a campaign measures each artifact once, and a
small device must not fill its disk with them."""


def evict_lru(files: Iterable[Path], max_bytes: int, keep: Path | None = None, fresh_s: float = 0.0) -> list[Path]:
    """Delete the least recently used of ``files`` (by access time, which a cache sets when it serves a file)
    beyond ``max_bytes`` in all; never ``keep``, nor, with ``fresh_s``, a file used in the last ``fresh_s`` seconds
    (another thread may be about to read it). A file gone meanwhile is skipped. Returns the deleted files."""
    found = []
    for path in files:
        with contextlib.suppress(FileNotFoundError):
            info = path.stat()
            found.append((info.st_atime, info.st_size, path))
    fresh_after = time.time() - fresh_s
    total = 0
    deleted = []
    for used, size, path in sorted(found, key=lambda item: item[0], reverse=True):
        total += size
        if total > max_bytes and path != keep and not (fresh_s and used > fresh_after):
            path.unlink(missing_ok=True)
            deleted.append(path)
    return deleted


class DownloadCache:
    """``<directory>/<sha256>.<format>`` files. Each is written whole (temp file, verify, rename), so a crash or
    a torn download never leaves a file that looks complete; partial files of an earlier process are removed."""

    def __init__(self, directory: Path, client: AgentClient, max_bytes: int = MAX_CACHE_BYTES) -> None:
        self.directory = directory
        self.client = client
        self.max_bytes = max_bytes
        with self._storing("cannot use the artifact cache"):
            directory.mkdir(parents=True, exist_ok=True)
            for partial in directory.glob(".*.part"):
                partial.unlink(missing_ok=True)

    def fetch(self, sha256: str, fmt: str, size: int | None = None) -> Path:
        """The verified local file of artifact ``sha256``; downloads it only if no intact copy is cached.

        Raises ``ArtifactError`` if the downloaded bytes do not hash to ``sha256`` or run over ``size`` (the
        size the collector declared; ``MAX_ARTIFACT_BYTES`` if none) or this machine's file-size limit with nothing
        kept, ``LocalStorageError`` if the cache cannot store it, and the client's ``CollectorError`` if the download
        fails.
        """
        if not SHA256.fullmatch(sha256):
            raise ArtifactError(f"not a sha256: {sha256!r}")
        path = self.directory / f"{sha256}.{fmt}"
        with self._storing(f"cannot store artifact {sha256} in"):
            if path.exists():
                if sha256_file(path) == sha256:
                    os.utime(path)
                    return path
                path.unlink()
            fd, name = tempfile.mkstemp(dir=self.directory, prefix=f".{sha256[:16]}.", suffix=".part")
            partial = Path(name)
            try:
                with os.fdopen(fd, "wb") as out:
                    self.client.download(sha256, out, MAX_ARTIFACT_BYTES if size is None else size)
                    out.flush()
                    os.fsync(out.fileno())
                got = sha256_file(partial)
                if got != sha256:
                    raise ArtifactError(
                        f"artifact {sha256} arrived with sha256 {got} (corrupted on the way or on the collector)"
                    )
                os.replace(partial, path)
            finally:
                partial.unlink(missing_ok=True)
            self._prune(keep=path)
        return path

    @contextlib.contextmanager
    def _storing(self, doing: str) -> Iterator[None]:
        """The system's errors about the cache as ``LocalStorageError`` naming it (``doing`` ends before the
        directory). A file-size limit (``EFBIG``) is the artifact's: one over it fails, smaller ones are stored."""
        try:
            yield
        except OSError as exc:
            if exc.errno == errno.EFBIG:
                raise ArtifactError(
                    f"{doing} {self.directory}: {exc.strerror} (this machine's file-size limit)"
                ) from exc
            raise storage_error(f"{doing} {self.directory}", exc) from exc

    def _prune(self, keep: Path) -> None:
        """Delete the least recently used artifacts beyond ``max_bytes``, never ``keep``."""
        files = [p for p in self.directory.iterdir() if p.is_file() and not p.name.startswith(".")]
        evict_lru(files, self.max_bytes, keep)
