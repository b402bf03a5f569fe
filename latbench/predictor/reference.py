"""HELP's 10 fixed reference architectures per space: a device is represented by its latencies on them."""

from __future__ import annotations

from latbench.datasets import space_archs
from latbench.predictor.errors import PredictorError
from latbench.spaces import get_space

REFERENCE_POSITIONS = {
    "nb201": (11982, 431, 55, 9, 14451, 8636, 9881, 13479, 6196, 1462),
    "fbnet": (3328, 3790, 3313, 890, 3052, 2538, 1640, 2514, 457, 2100),
    "ofa-mbv3": (1316, 1587, 1621, 1636, 1980, 2329, 2487, 3355, 3740, 4948),
}
"""Positions in ``latbench.datasets.space_archs``: NB201 official indices; FBNet and OFA MobileNetV3 positions in
the built-in ``help-fbnet`` and ``help-ofa`` datasets (HELP's ``arch.pt`` and ``ofa_archs.pt`` order)."""


def reference_archs(space: str) -> list[str]:
    name = get_space(space).name
    if name not in REFERENCE_POSITIONS:
        raise PredictorError(
            f"no reference architectures for search space {name!r}; HELP defines them for "
            f"{', '.join(REFERENCE_POSITIONS)} only"
        )
    archs = space_archs(name)
    return [archs[p] for p in REFERENCE_POSITIONS[name]]
