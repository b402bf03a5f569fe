"""Content hashes of files, shared by the side that builds artifacts and the side that runs them (no torch)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

CHUNK_BYTES = 1 << 20


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of the file's bytes, read in chunks so large models never sit in memory twice."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def archs_sha256(archs: Sequence[str]) -> str:
    """Hex SHA-256 of architecture strings in order: what a table's or a dataset's stored codes must stand for."""
    return hashlib.sha256("\n".join(archs).encode()).hexdigest()
