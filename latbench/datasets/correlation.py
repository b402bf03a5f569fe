"""Spearman rank correlation between devices, the measure by which the paper's tasks call devices alike.

Computed on the architectures every compared device measured, so each pair is judged on the same networks.
Spearman's edge cases (ties, no ranking) are ``latbench.ranking``'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from latbench.datasets.errors import DatasetError
from latbench.datasets.model import Dataset
from latbench.ranking import spearman

MIN_COMMON_ARCHS = 10


@dataclass(frozen=True)
class Correlations:
    """``srcc[i, j]`` between ``devices[i]`` and ``devices[j]`` over ``n_archs`` shared architectures."""

    devices: tuple[str, ...]
    srcc: np.ndarray
    n_archs: int


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
    shared = matrix[:, common]
    srcc = np.eye(len(names))
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            srcc[i, j] = srcc[j, i] = np.nan_to_num(spearman(shared[i], shared[j]), nan=0.0)
    return Correlations(devices=names, srcc=srcc, n_archs=n)
