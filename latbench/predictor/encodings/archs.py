"""The architectures each space's shipped tables cover, in the order of the latency datasets they serve."""

from __future__ import annotations

from latbench.predictor.encodings.store import check
from latbench.spaces import get_space


def default_archs(space: str) -> tuple[str, ...]:
    """NB201: all 15,625 cells in official index order; FBNet: the 5,000 of ``help-fbnet``, in its order."""
    space, _ = check(space, "zcp")
    if space == "nb201":
        return tuple(get_space("nb201").archs())  # type: ignore[attr-defined]
    from latbench.datasets import load

    return load("help-fbnet").archs
