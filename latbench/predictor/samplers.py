"""Which architectures the target device should measure: at random, or spread over the encoding space.

The encoding sampler follows NASFLAT: half the budget from KMeans clusters of the architectures' encodings (the
member nearest each centre), the rest from cosine-similarity buckets (architectures ordered by their cosine
similarity to the mean encoding, cut into equal buckets, one drawn from each), so the samples cover both the
typical and the extreme architectures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from latbench.predictor.errors import PredictorError
from latbench.predictor.features import codes, cost_features
from latbench.predictor.stats import zscore_stats

SAMPLERS = ("random", "encoding")
"""Samplers that pick a whole sample at once (``sample_indices``)."""
EVAL_SAMPLERS = (*SAMPLERS, "adaptive")
"""Samplers ``evaluate`` runs: those, and the adaptive one (``latbench.predictor.adaptive``), which measures a batch
at a time where the model errs."""


def encode(space: str, arch_codes: np.ndarray) -> np.ndarray:
    """The encoding the sampler clusters: z-scored cost features beside the one-hot ops of each position."""
    costs = cost_features(space, arch_codes)
    mean, std = zscore_stats(costs)
    onehot = np.eye(int(arch_codes.max()) + 1)[arch_codes].reshape(len(arch_codes), -1)
    return np.c_[(costs - mean) / std, onehot]


def kmeans(x: np.ndarray, k: int, seed: int, iterations: int = 25) -> np.ndarray:
    """Lloyd's KMeans with k-means++ seeding; returns the (k, d) centres."""
    rng = np.random.default_rng(seed)
    centres = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        distance = np.min(((x[:, None, :] - np.array(centres)[None]) ** 2).sum(-1), axis=1)
        total = distance.sum()
        centres.append(x[rng.choice(len(x), p=distance / total)] if total > 0 else x[rng.integers(len(x))])
    c = np.array(centres)
    for _ in range(iterations):
        label = (((x[:, None, :] - c[None]) ** 2).sum(-1)).argmin(axis=1)
        moved = np.array([x[label == j].mean(axis=0) if np.any(label == j) else c[j] for j in range(k)])
        if np.allclose(moved, c):
            break
        c = moved
    return c


def sample_indices(
    space: str,
    archs: Sequence[str],
    n: int,
    method: str = "random",
    seed: int = 0,
    arch_codes: np.ndarray | None = None,
) -> np.ndarray:
    """Indices into ``archs`` of ``n`` distinct architectures to measure."""
    if method not in SAMPLERS:
        raise PredictorError(f"unknown sampler {method!r}; choose one of: {', '.join(SAMPLERS)}")
    if not 1 <= n <= len(archs):
        raise PredictorError(f"cannot pick {n} architectures out of {len(archs)}")
    rng = np.random.default_rng(seed)
    if method == "random":
        return np.sort(rng.choice(len(archs), size=n, replace=False))
    x = encode(space, codes(space, list(archs)) if arch_codes is None else arch_codes)
    pool = rng.choice(len(x), size=min(len(x), 4000), replace=False)
    clusters = (n + 1) // 2
    chosen: list[int] = []
    for centre in kmeans(x[pool], clusters, seed):
        order = np.argsort(((x - centre) ** 2).sum(axis=1))
        chosen.append(int(next(i for i in order if i not in chosen)))
    mean = x.mean(axis=0)
    cosine = (x @ mean) / (np.linalg.norm(x, axis=1) * np.linalg.norm(mean) + 1e-12)
    buckets = np.array_split(np.argsort(cosine), n - clusters) if n > clusters else []
    for bucket in buckets:
        free = [int(i) for i in bucket if int(i) not in chosen]
        if free:
            chosen.append(int(rng.choice(free)))
    remaining = np.setdiff1d(np.arange(len(archs)), chosen)
    if len(chosen) < n:
        chosen += [int(i) for i in rng.choice(remaining, size=n - len(chosen), replace=False)]
    return np.sort(np.array(chosen, dtype=np.int64))


CANDIDATE_POOL = 5000
"""Seeded samples that stand for a space that neither lists its members nor has a built-in dataset (a plugin's)."""


def candidate_archs(space: str) -> list[str]:
    """The architectures ``suggest`` (and an adaptive campaign) picks from (``latbench.datasets.space_archs``):
    every NB201 cell; for FBNet the 5,000 of ``help-fbnet``; for a space with neither a list of its members nor a
    built-in dataset, ``CANDIDATE_POOL`` of its seeded samples (seed 0; all of a smaller space's members).

    FBNet has 9^22 members; the built-in dataset's architectures are the ones whose source latencies are known.
    """
    from latbench.datasets import space_archs
    from latbench.datasets.errors import DatasetError
    from latbench.spaces import get_space

    try:
        return space_archs(space)
    except DatasetError:
        s = get_space(space)
        return s.sample(min(CANDIDATE_POOL, math.prod(s.genes)), seed=0)


def suggest(space: str, n: int = 20, method: str = "encoding", seed: int = 0) -> list[str]:
    """The ``n`` architectures to measure on a new device, by ``method`` (``random`` or ``encoding``)."""
    archs = candidate_archs(space)
    return [archs[i] for i in sample_indices(space, archs, n, method, seed)]
