"""NAS search spaces: canonical architecture strings, seeded sampling, graph encodings, costs and builders.

Nothing here imports torch; the PyTorch builders live in ``latbench.spaces.builders``.
"""

from __future__ import annotations

from functools import cache

from latbench.errors import UnknownSpace
from latbench.spaces.base import ArchGraph, Costs, SearchSpace
from latbench.spaces.fbnet import FBNet
from latbench.spaces.nb201 import NB201
from latbench.spaces.ofa import OFAMobileNetV3

SPACES: dict[str, type[SearchSpace]] = {"nb201": NB201, "fbnet": FBNet, "ofa-mbv3": OFAMobileNetV3}


def get_space(name: str) -> SearchSpace:
    """The search space called ``name`` (``nb201`` or ``fbnet``), one shared instance each."""
    if name.lower() not in SPACES:
        raise UnknownSpace(f"unknown search space {name!r}; choose one of: {', '.join(SPACES)}")
    return _instance(name.lower())


@cache
def _instance(name: str) -> SearchSpace:
    return SPACES[name]()


__all__ = ["NB201", "SPACES", "ArchGraph", "Costs", "FBNet", "SearchSpace", "get_space"]
