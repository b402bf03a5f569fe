"""What a latency-constrained search maximises once it stays under the budget.

Accuracy is not known for new architectures, so the search maximises a cheap stand-in: capacity (parameters or
FLOPs, the usual proxies in hardware-aware NAS) or a zero-cost proxy computed on random inputs. Capacity counts
only the layers that can change the output (``SearchSpace.effective_costs``): a branch whose result is thrown
away would otherwise score as capacity while adding nothing to what the network computes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from latbench.errors import LatbenchError
from latbench.spaces import get_space

Objective = Callable[[Sequence[str]], np.ndarray]
OBJECTIVES = ("params", "flops", "proxy")
DEFAULT_PROXY = "nwot"


def objective(space: str, name: str, proxy: str = DEFAULT_PROXY) -> Objective:
    """A vectorised score for ``name``; larger is better."""
    s = get_space(space)
    if name == "params":
        return lambda archs: np.array([s.effective_costs(a).params for a in archs], dtype=np.float64)
    if name == "flops":
        return lambda archs: np.array([s.effective_costs(a).macs for a in archs], dtype=np.float64)
    if name == "proxy":
        return _proxy(space, proxy)
    raise LatbenchError(f"unknown objective {name!r}; choose one of: {', '.join(OBJECTIVES)}")


def _proxy(space: str, proxy: str) -> Objective:
    """The proxy's column of the space's zcp table; without a table (a plugin's space), an empty one whose rows
    are all computed as the search asks for them (about half a second an architecture)."""
    from latbench.predictor.encodings import load
    from latbench.predictor.encodings.errors import EncodingsUnavailable

    try:
        table = load(space, "zcp")
    except EncodingsUnavailable:
        from latbench.predictor.encodings.zcp import compute_zcp

        table = compute_zcp(space, [])
    if proxy not in table.names:
        raise LatbenchError(f"unknown zero-cost proxy {proxy!r}; choose one of: {', '.join(table.names)}")
    column = list(table.names).index(proxy)
    return lambda archs: np.asarray(table.lookup(list(archs))[:, column], dtype=np.float64)
