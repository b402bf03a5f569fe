"""Zero-cost proxy tables: build each network, score it on one seeded batch, checkpoint as it goes.

Every architecture gets the same weights seed and the same batch, so a row depends only on its architecture
and the settings: a table computed in pieces, resumed, or extended by ``Encodings.lookup`` is the same table.
``params`` (millions) and ``flops`` (MFLOPs, multiply-accumulates at the benchmark input as ``space.costs`` counts
them) are analytic; the other columns come from ``proxies.score``. An interrupted checkpointed run saves its
finished rows before it stops (``ZcpInterrupted``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latbench.errors import LatbenchError
from latbench.hashing import archs_sha256
from latbench.predictor.encodings import proxies
from latbench.predictor.encodings.errors import ZcpInterrupted
from latbench.predictor.encodings.store import Encodings, check, load, save
from latbench.predictor.encodings.threads import one_thread
from latbench.progress import Progress, notify
from latbench.spaces import get_space
from latbench.spaces.builders import builder_of, initialise

CODE_VERSION = 1
"""Bumped whenever a proxy's definition changes, so tables of different definitions never mix."""
BATCH_SIZE = 8
RESOLUTION = 16
"""Half CIFAR's 32x32, to halve the cost of the full tables (docs/encodings.md has the measurements)."""
SPACE_RESOLUTION: dict[str, int] = {"ofa-mbv3": 32}
"""Spaces whose networks cannot take ``RESOLUTION``: the smallest input they accept (OFA: five stride-2 layers)."""
NAMES: tuple[str, ...] = ("params", "flops", *proxies.MODEL_PROXIES)
CHECKPOINT_SECONDS = 60.0


def resolution_of(space: str) -> int:
    """The input resolution of ``space``'s proxies unless asked otherwise: ``RESOLUTION`` where the space allows,
    else its default (a plugin's networks may need more)."""
    if space in SPACE_RESOLUTION:
        return SPACE_RESOLUTION[space]
    s = get_space(space)
    try:
        s.validate_resolution(RESOLUTION)
    except LatbenchError:
        return s.default_resolution
    return RESOLUTION


def settings_from_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``compute_zcp`` that reproduce a table's rows."""
    return {k: meta[k] for k in ("seed", "batch_size", "resolution")}


def _meta(space: str, seed: int, batch_size: int, resolution: int) -> dict[str, Any]:
    return {
        "space": space,
        "kind": "zcp",
        "seed": seed,
        "batch_size": batch_size,
        "resolution": resolution,
        "code_version": CODE_VERSION,
        "torch": torch.__version__,
    }


def score_arch(space: str, arch: str, batch: proxies.Batch, seed: int) -> np.ndarray:
    """One row of ``NAMES`` for ``arch`` (canonical).

    The network is built on the meta device and every weight then set by ``initialise`` (BatchNorm statistics
    by the proxies), which skips PyTorch's default initialisation, a third of the cost of a row.
    """
    s = get_space(space)
    costs = s.costs(arch)
    with torch.device("meta"):
        model = builder_of(s)(arch, s.default_classes)
    model.to_empty(device="cpu")
    initialise(model, torch.Generator().manual_seed(seed))
    scores = proxies.score(model, batch)
    row = [costs.params / 1e6, costs.mflops, *(scores[n] for n in proxies.MODEL_PROXIES)]
    return np.array(row, dtype=np.float32)


def compute_zcp(
    space: str,
    archs: Sequence[str],
    seed: int = 0,
    progress: Progress | None = None,
    *,
    batch_size: int = BATCH_SIZE,
    resolution: int | None = None,
    checkpoint: str | Path | None = None,
) -> Encodings:
    """The zero-cost proxies of ``archs`` as an ``Encodings`` table (needs torch), at ``resolution_of(space)``
    unless ``resolution`` is given.

    With ``checkpoint``, finished rows are saved there about every minute and a later call with the same
    architectures and settings resumes from them; Ctrl-C saves them too and raises ``ZcpInterrupted``.
    """
    space, _ = check(space, "zcp")
    s = get_space(space)
    resolution = resolution_of(space) if resolution is None else resolution
    s.validate_resolution(resolution)
    canonical = tuple(s.canonical_many(archs))
    meta = _meta(space, seed, batch_size, resolution)
    values = np.full((len(canonical), len(NAMES)), np.nan, dtype=np.float32)
    done = _resume(Path(checkpoint), space, canonical, meta, values) if checkpoint else 0
    batch = proxies.Batch.make(batch_size, resolution, s.default_classes, seed)
    last = time.monotonic()
    stage = f"zcp {space}"
    notify(progress, stage, done, len(canonical))
    finished = done
    try:
        with one_thread():
            for i in range(done, len(canonical)):
                values[i] = score_arch(space, canonical[i], batch, seed)
                finished = i + 1
                notify(progress, stage, finished, len(canonical))
                if checkpoint and time.monotonic() - last > CHECKPOINT_SECONDS:
                    _save_partial(Path(checkpoint), space, canonical, meta, values, finished)
                    last = time.monotonic()
    except KeyboardInterrupt:
        if not checkpoint or not finished:
            raise
        _save_partial(Path(checkpoint), space, canonical, meta, values, finished)
        raise ZcpInterrupted(finished, len(canonical), Path(checkpoint)) from None
    table = Encodings(space, "zcp", NAMES, canonical, values, meta)
    if checkpoint:
        _save_partial(Path(checkpoint), space, canonical, meta, values, len(canonical))
    return table


def _save_partial(
    path: Path, space: str, archs: tuple[str, ...], meta: dict[str, Any], values: np.ndarray, n: int
) -> None:
    save(Encodings(space, "zcp", NAMES, archs[:n], values[:n].copy(), meta | {"target": archs_sha256(archs)}), path)


def _resume(path: Path, space: str, archs: tuple[str, ...], meta: dict[str, Any], values: np.ndarray) -> int:
    """Copy a matching checkpoint's rows into ``values``; return how many there are (0 if none or stale)."""
    if not path.is_file():
        return 0
    part = load(space, "zcp", path)
    same = {k: part.meta.get(k) for k in meta} == meta and part.meta.get("target") == archs_sha256(archs)
    if not same or part.names != NAMES or part.archs != archs[: len(part.archs)]:
        return 0
    values[: len(part.archs)] = part.values
    return len(part.archs)
