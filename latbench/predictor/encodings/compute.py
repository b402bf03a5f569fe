"""Compute a whole table (every architecture ``default_archs`` lists, or those given) into a directory, resumably."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from latbench.predictor.encodings.archs import default_archs
from latbench.predictor.encodings.store import check, file_name, save, user_dir
from latbench.progress import Progress


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

    Zero-cost proxies checkpoint to ``{space}-zcp.partial.npz`` beside it about every minute and on Ctrl-C
    (``ZcpInterrupted``), so an interrupted run resumes.
    """
    space, kind = check(space, kind)
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
