"""Compute a whole table (every architecture ``default_archs`` lists, or those given) into a directory, resumably.

Architectures given for the default directory extend the table ``load`` reads there (the user's or the shipped
one) rather than replace it: a table of a few rows in ``$LATBENCH_HOME/encodings`` would shadow the shipped one
for every later ``load``, leaving every other architecture to be computed on demand.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from latbench.predictor.encodings.archs import default_archs
from latbench.predictor.encodings.errors import EncodingsError
from latbench.predictor.encodings.store import Encodings, check, default_source, file_name, read, save, user_dir
from latbench.progress import Progress
from latbench.spaces import get_space


def compute(
    space: str,
    kind: str,
    out: str | Path | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    archs: Sequence[str] | None = None,
) -> Path:
    """Compute the ``kind`` table of ``space`` and write ``{space}-{kind}.npz`` into ``out``; return its path.
    ``archs`` (default: ``default_archs``) are the rows; a space that neither lists its members nor has a built-in
    dataset (a plugin's) needs them, and rows it lacks are computed when looked up.

    ``archs`` with no ``out``, where ``load`` finds a table already, extend that table (``extend``) into
    ``user_dir()``; with ``out``, the file holds ``archs`` alone.

    Zero-cost proxies checkpoint to ``{space}-zcp.partial.npz`` beside it about every minute and on Ctrl-C
    (``ZcpInterrupted``), so an interrupted run resumes.
    """
    space, kind = check(space, kind)
    if archs is not None and out is None and default_source(space, kind).is_file():
        return extend(space, kind, archs, seed, progress)
    directory = Path(out) if out is not None else user_dir()
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / file_name(space, kind)
    archs = tuple(archs) if archs is not None else default_archs(space)
    if kind == "zcp":
        from latbench.predictor.encodings.zcp import compute_zcp

        partial = directory / f"{space}-zcp.partial.npz"
        table = compute_zcp(space, archs, seed=seed, progress=progress, checkpoint=partial)
        path = save(table, target)
        partial.unlink(missing_ok=True)
        return path
    from latbench.predictor.encodings.arch2vec import train_arch2vec

    return save(train_arch2vec(space, archs=archs, seed=seed, progress=progress), target)


def extend(space: str, kind: str, archs: Sequence[str], seed: int = 0, progress: Progress | None = None) -> Path:
    """Add the rows of ``archs`` that the table ``load`` reads lacks, computed with its settings, and write the
    whole into ``user_dir()``; return the path of the table that now covers them (the one read, where it lacked
    none, which is then left as it is).

    Only zero-cost proxies extend: each row is computed alone, so a new row is what the whole table would hold. An
    arch2vec embedding comes from an encoder trained on the list, so rows of another list would not mix; nor do
    proxies of another ``seed`` than the table's. Both are refused, pointing at ``out``.
    """
    space, kind = check(space, kind)
    source = default_source(space, kind)
    current = read(source.read_bytes(), space, kind, str(source))
    known = set(current.archs)
    new = [a for a in dict.fromkeys(get_space(space).canonical_many(archs)) if a not in known]
    if not new:
        return Path(str(source))
    elsewhere = "write them to a file of their own with --out DIR (encodings.load(..., path=...) reads it)"
    if kind != "zcp":
        raise EncodingsError(
            f"{source} holds {len(current.archs)} {space} arch2vec embeddings from an encoder trained on its own list; "
            f"embeddings of other architectures would come from another encoder and cannot join it: {elsewhere}"
        )
    if current.meta.get("seed") != seed:
        raise EncodingsError(
            f"{source} holds {space} proxies of seed {current.meta.get('seed')}, not {seed}: rows of another seed "
            f"cannot join it; use --seed {current.meta.get('seed')}, or {elsewhere}"
        )
    from latbench.predictor.encodings.zcp import compute_zcp, settings_from_meta

    directory = user_dir()
    directory.mkdir(parents=True, exist_ok=True)
    partial = directory / f"{space}-zcp.partial.npz"
    added = compute_zcp(space, new, progress=progress, checkpoint=partial, **settings_from_meta(current.meta))
    if added.names != current.names:
        raise EncodingsError(
            f"{source} holds other proxies ({', '.join(current.names)}) than this latbench computes; {elsewhere}"
        )
    merged = Encodings(
        space, kind, current.names, current.archs + added.archs, np.vstack([current.values, added.values]), current.meta
    )
    path = save(merged, directory / file_name(space, kind))
    partial.unlink(missing_ok=True)
    return path
