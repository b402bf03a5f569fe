"""Spearman rank correlation between devices, the measure by which the paper's tasks call devices alike.

Computed on the architectures every compared device measured, so each pair is judged on the same networks.
Ties get average ranks (as ``scipy.stats.spearmanr``), which matters for the whole-millisecond phone tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from latbench.datasets.errors import DatasetError
from latbench.datasets.model import Dataset

MIN_COMMON_ARCHS = 10


@dataclass(frozen=True)
class Correlations:
    """``srcc[i, j]`` between ``devices[i]`` and ``devices[j]`` over ``n_archs`` shared architectures."""

    devices: tuple[str, ...]
    srcc: np.ndarray
    n_archs: int


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of a 1-D array, tied values sharing the mean of their ranks."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(values)]
    group = np.repeat(np.arange(len(starts)), ends - starts)
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = ((starts + ends + 1) / 2.0)[group]
    return ranks


def device_correlations(ds: Dataset, devices: Sequence[str] | None = None) -> Correlations:
    """Pairwise SRCC of ``devices`` (default: all of ``ds``) on the architectures they all measured.

    A device with one latency for every architecture has no ranking: its correlations count as 0.
    """
    names = tuple(devices) if devices is not None else tuple(ds.device_names)
    if len(names) < 2:
        raise DatasetError("correlations need at least two devices")
    matrix = np.stack([ds.vector(d) for d in names])
    common = ~np.isnan(matrix).any(axis=0)
    n = int(common.sum())
    if n < MIN_COMMON_ARCHS:
        raise DatasetError(
            f"the devices share only {n} measured architecture(s); correlations need at least "
            f"{MIN_COMMON_ARCHS} measured on every device"
        )
    ranks = np.stack([average_ranks(row.astype(np.float64)) for row in matrix[:, common]])
    with np.errstate(invalid="ignore", divide="ignore"):
        srcc = np.nan_to_num(np.corrcoef(ranks), nan=0.0)
    np.fill_diagonal(srcc, 1.0)
    return Correlations(devices=names, srcc=srcc, n_archs=n)
