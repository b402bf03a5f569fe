"""Spearman's rank correlation, the one measure by which latbench calls two latency rankings alike.

Top-level and numpy only, so the datasets, the collector's dashboard, the predictor and the quickstart share one
definition without importing each other. Its edge cases, decided once:

- ties get average ranks (as ``scipy.stats.rankdata``), which matters for whole-millisecond phone tables;
- a NaN on either side gives ``nan`` (scipy's ``nan_policy="propagate"``): a caller wanting the pairs both
  sides measured drops the others first;
- fewer than 2 points, or a side with one value throughout, has no ranking: ``nan``.

A caller that shows something else for "no ranking" (0 in a table, ``None`` in JSON) converts at its own edge.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def average_ranks(values: ArrayLike) -> np.ndarray:
    """Ranks 1..n of a 1-D array, tied values sharing the mean of their ranks."""
    x = np.asarray(values, dtype=np.float64)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return ((ends - counts + 1 + ends) / 2.0)[inverse.reshape(-1)]


def spearman(a: ArrayLike, b: ArrayLike) -> float:
    """Spearman's rank correlation of two equally long 1-D arrays; ``nan`` where it is undefined (see above)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"spearman needs two 1-D arrays of one length, got shapes {x.shape} and {y.shape}")
    if len(x) < 2 or np.isnan(x).any() or np.isnan(y).any():
        return float("nan")
    rx, ry = average_ranks(x), average_ranks(y)
    if np.ptp(rx) == 0 or np.ptp(ry) == 0:
        return float("nan")
    rx -= rx.mean()
    ry -= ry.mean()
    return float(np.clip((rx @ ry) / np.sqrt((rx @ rx) * (ry @ ry)), -1.0, 1.0))
