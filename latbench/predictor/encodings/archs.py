"""The architectures each space's shipped tables cover, in the order of the latency datasets they serve."""

from __future__ import annotations

from latbench.predictor.encodings.store import check


def default_archs(space: str) -> tuple[str, ...]:
    """``latbench.datasets.space_archs``: NB201's 15,625 cells in official index order, else the 5,000 of the
    space's built-in dataset (``help-fbnet``, ``help-ofa``)."""
    space, _ = check(space, "zcp")
    from latbench.datasets import space_archs

    return tuple(space_archs(space))
