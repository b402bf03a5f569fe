"""Spearman rank correlation between devices, the measure by which the paper's tasks call devices alike.

Computed on the architectures every compared device measured, so each pair is judged on the same networks.
Spearman's edge cases (ties, no ranking) are ``latbench.ranking``'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


@dataclass(frozen=True)
class Narrowing:
    """A dataset whose devices leave fewer architectures that every device measured: correlations over the pool
    rank each pair on ``shared`` architectures, where the other datasets' devices alone share ``without``."""

    dataset: str
    devices: tuple[str, ...]
    shared: int
    without: int

    def message(self) -> str:
        named = ", ".join(self.devices[:3]) + (f" and {len(self.devices) - 3} more" if len(self.devices) > 3 else "")
        return (
            f"dataset {self.dataset!r} ({named}) measured {self.shared:,} of the {self.without:,} architectures "
            f"the other devices all measured, so every pair of devices is correlated over those {self.shared:,} "
            "only: the hard splits rest on them"
        )


def shared_architectures(ds: Dataset, devices: Sequence[str] | None = None) -> int:
    """How many architectures every one of ``devices`` (default: all of ``ds``) measured: what
    ``device_correlations`` ranks over."""
    names = list(devices) if devices is not None else ds.device_names
    if not names:
        return len(ds.archs)
    return int((~np.isnan(np.stack([ds.vector(d) for d in names]))).all(axis=0).sum())


def narrowing(ds: Dataset, groups: Mapping[str, Sequence[str]]) -> list[Narrowing]:
    """The groups (dataset name -> its devices in ``ds``) without which the devices would share more
    architectures, the narrowest first: a small dataset beside a large one silently reshapes every correlation."""
    shared = shared_architectures(ds)
    found = []
    for name, devices in groups.items():
        others = [d for d in ds.device_names if d not in set(devices)]
        without = shared_architectures(ds, others) if others else shared
        if others and without > shared:
            found.append(Narrowing(name, tuple(devices), shared, without))
    return sorted(found, key=lambda n: n.shared - n.without)
