"""The paper's automatic hard split: train and test devices that are as unlike each other as possible.

1. Weigh a complete graph of the devices by their pairwise Spearman correlation (SRCC).
2. Bisect it with Kernighan-Lin (networkx, seeded): two halves with the least correlation across the cut.
3. A half smaller than its target takes the other half's devices most like it; then, while a side is larger
   than its target, drop the device with the highest mean SRCC to the other side.
Both orientations of the bisection (which half trains) are tried; the one with the lower cross SRCC is kept.
The same devices, sizes and seed always give the same split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from latbench.datasets.correlation import Correlations, device_correlations
from latbench.datasets.errors import DatasetError
from latbench.datasets.model import Dataset
from latbench.errors import MissingDependency


@dataclass(frozen=True)
class Split:
    """A generated task: ``train`` and ``test`` devices with the mean SRCC within and across them."""

    space: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    seed: int
    n_archs: int
    srcc_within_train: float
    srcc_within_test: float
    srcc_across: float
    datasets: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _kernighan_lin() -> Any:
    try:
        from networkx import Graph
        from networkx.algorithms.community import kernighan_lin_bisection
    except ImportError:
        raise MissingDependency("networkx", "datasets", "generating a hard split") from None
    return Graph, kernighan_lin_bisection


def _mean(srcc: np.ndarray, a: list[int], b: list[int]) -> float:
    block = srcc[np.ix_(a, b)]
    if a == b:
        return float(block[~np.eye(len(a), dtype=bool)].mean()) if len(a) > 1 else 1.0
    return float(block.mean())


def _shape(side: list[int], other: list[int], size: int, srcc: np.ndarray) -> None:
    """Grow ``side`` to ``size`` with the devices of ``other`` that correlate best with it."""
    while len(side) < size:
        best = max(other, key=lambda d: (_mean(srcc, [d], side), -d))
        other.remove(best)
        side.append(best)


def _orient(train: list[int], test: list[int], m: int, n: int, srcc: np.ndarray) -> tuple[list[int], list[int]]:
    train, test = list(train), list(test)
    _shape(train, test, m, srcc)
    _shape(test, train, n, srcc)
    while len(train) > m or len(test) > n:
        over = [(d, test) for d in train if len(train) > m] + [(d, train) for d in test if len(test) > n]
        device, _ = max(over, key=lambda pair: (_mean(srcc, [pair[0]], pair[1]), -pair[0]))
        (train if device in train else test).remove(device)
    return sorted(train), sorted(test)


def hard_split(
    ds: Dataset,
    train: int,
    test: int,
    seed: int = 0,
    devices: Sequence[str] | None = None,
    correlations: Correlations | None = None,
) -> Split:
    """Split ``devices`` (default: all of ``ds``) into ``train`` source and ``test`` target devices, hard.

    ``correlations`` (``device_correlations`` of those devices) saves recomputing them for each of many splits.
    """
    names = list(devices) if devices is not None else ds.device_names
    if train < 1 or test < 1:
        raise DatasetError(f"a split needs at least one train and one test device, got {train} and {test}")
    if train + test > len(names):
        raise DatasetError(
            f"a split of {train} train and {test} test devices needs {train + test} devices; there are {len(names)}"
        )
    corr = correlations if correlations is not None else device_correlations(ds, names)
    if corr.devices != tuple(names):
        raise DatasetError("the correlations given are not of the devices to split")
    graph_class, bisect = _kernighan_lin()
    graph = graph_class()
    graph.add_nodes_from(range(len(names)))
    graph.add_weighted_edges_from(
        (i, j, float(corr.srcc[i, j])) for i in range(len(names)) for j in range(i + 1, len(names))
    )
    a, b = (sorted(half) for half in bisect(graph, weight="weight", seed=seed))
    options = [_orient(a, b, train, test, corr.srcc), _orient(b, a, train, test, corr.srcc)]
    best_train, best_test = min(options, key=lambda o: _mean(corr.srcc, o[0], o[1]))
    return Split(
        space=ds.space,
        train=tuple(names[i] for i in best_train),
        test=tuple(names[i] for i in best_test),
        seed=seed,
        n_archs=corr.n_archs,
        srcc_within_train=round(_mean(corr.srcc, best_train, best_train), 4),
        srcc_within_test=round(_mean(corr.srcc, best_test, best_test), 4),
        srcc_across=round(_mean(corr.srcc, best_train, best_test), 4),
    )
