"""HELP's 10 fixed reference architectures per space: a device is represented by its latencies on them."""

from __future__ import annotations

from latbench import datasets
from latbench.spaces import get_space

NB201_INDICES = (11982, 431, 55, 9, 14451, 8636, 9881, 13479, 6196, 1462)
FBNET_POSITIONS = (3328, 3790, 3313, 890, 3052, 2538, 1640, 2514, 457, 2100)
"""NB201 official indices; FBNet positions in the built-in ``help-fbnet`` dataset (HELP's ``arch.pt`` order)."""


def reference_archs(space: str) -> list[str]:
    sp = get_space(space)
    if sp.name == "nb201":
        return [sp.from_index(i) for i in NB201_INDICES]  # type: ignore[attr-defined]
    archs = datasets.load("help-fbnet").archs
    return [archs[p] for p in FBNET_POSITIONS]
