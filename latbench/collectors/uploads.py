"""Model files an admin uploads for campaigns: kept once per content hash beside the built artifacts.

An upload names the SHA-256 of its content; the body streams into a temporary file (never whole in memory; the
app's ``BodyLimit`` stops it at the collector's model-size limit with a 413), is refused unless it hashes to that
name, and is recognised by its content (``ModelFile``: a LiteRT flatbuffer or a readable ONNX graph). It then
becomes an artifact row keyed by its hash, so agents download it like a built artifact and check the hash again.
Uploading the same content twice keeps one copy (the second replaces the first with identical bytes). The
store keeps the file too (``blobs``), so every replica serves it; one pruned (``latbench collector prune
--uploads``) is no longer held, until it is uploaded again.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from latbench.agents.modelfile import ModelFile
from latbench.collectors import blobs
from latbench.collectors.db import insert_new
from latbench.collectors.models import ArtifactRow
from latbench.errors import LatbenchError, NotFound, RequestRejected
from latbench.protocol import ModelInfo
from latbench.spaces import MODEL_SET

MODELS_DIR = "models"
"""Where uploaded files live, inside the collector's artifacts directory."""


async def receive(body: AsyncIterator[bytes], sha256: str, artifacts_dir: Path) -> Path:
    """The streamed ``body`` in a temporary file beside the kept models; nothing is left if it breaks off. The
    caller removes the file once it is kept or refused."""
    directory = artifacts_dir / MODELS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=directory, prefix=f".{sha256[:16]}.", suffix=".part.onnx")
    partial = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in body:
                out.write(chunk)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return partial


def inspect(partial: Path, sha256: str) -> ModelFile:
    """The received file as a model, refused (400) unless it hashes to ``sha256``, latbench can time it and it
    holds all its weights (agents download this one file). Run
    outside any transaction: reading a large ONNX graph takes a while."""
    try:
        model = ModelFile.open(partial)
        model.check_self_contained()
    except LatbenchError as exc:  # its messages begin "model PATH: ..."
        message = str(exc).replace(f"model {partial}", "the uploaded file").replace(str(partial), "the uploaded file")
        raise RequestRejected(message) from None
    if model.sha256 != sha256:
        raise RequestRejected(f"the uploaded bytes hash to {model.sha256}, not {sha256}: damaged on the way")
    return model


def keep(
    session: Session, partial: Path, model: ModelFile, artifacts_dir: Path, now: datetime
) -> tuple[ModelInfo, bool]:
    """Keep the inspected file ``partial`` as its model's one copy; return what it is and whether it is new."""
    found = ModelInfo(sha256=model.sha256, format=model.format, size=partial.stat().st_size)  # type: ignore[arg-type]
    new = info(session, model.sha256) is None
    path = artifacts_dir / _file_name(found)
    os.replace(partial, path)
    blobs.put(session, found.sha256, path)
    row = {
        "key_digest": found.sha256, "format": found.format, "space": MODEL_SET, "arch": found.sha256, "batch": 0,
        "resolution": 0, "classes": 0, "opset": model.opset or 0, "seed": 0, "requested_at": now,
        "sha256": found.sha256, "size": found.size, "file_name": _file_name(found), "built_at": now, "error": None,
    }  # fmt: skip
    insert_new(session, ArtifactRow, [row])
    pruned = update(ArtifactRow).where(ArtifactRow.key_digest == found.sha256, ArtifactRow.file_name.is_(None))
    session.execute(pruned.values(file_name=row["file_name"], built_at=now))
    return found, new


def _file_name(model: ModelInfo) -> str:
    return f"{MODELS_DIR}/{model.sha256}.{model.format}"


def info(session: Session, sha256: str) -> ModelInfo | None:
    """The uploaded model ``sha256``, if the collector holds it."""
    row = session.execute(
        select(ArtifactRow.format, ArtifactRow.size).where(
            ArtifactRow.key_digest == sha256, ArtifactRow.space == MODEL_SET, ArtifactRow.file_name.is_not(None)
        )
    ).first()
    return None if row is None else ModelInfo(sha256=sha256, format=row.format, size=row.size)


def get(session: Session, sha256: str, max_bytes: int) -> ModelInfo:
    """The uploaded model ``sha256``; ``NotFound`` whose detail tells the upload limit ``max_bytes``, so a client
    refuses a file over it before sending a byte."""
    found = info(session, sha256)
    if found is None:
        raise NotFound(f"no uploaded model with sha256 {sha256}", {"max_bytes": max_bytes})
    return found
