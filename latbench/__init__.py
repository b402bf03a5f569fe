"""latbench: measure neural-network latency on real hardware and learn latency predictors from it.

The public API is re-exported here; ``import latbench`` stays light (no torch, no runtime) until a function
that needs them is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from latbench.errors import LatbenchError

__version__ = "0.1.0"

if TYPE_CHECKING:
    from latbench.agents.measure import TimingSettings
    from latbench.local import measure
    from latbench.resultfile import read_results
    from latbench.spaces import get_space

_LAZY = {
    "measure": "latbench.local",
    "TimingSettings": "latbench.agents.measure",
    "read_results": "latbench.resultfile",
    "get_space": "latbench.spaces",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'latbench' has no attribute {name!r}")


__all__ = ["LatbenchError", "TimingSettings", "__version__", "get_space", "measure", "read_results"]
