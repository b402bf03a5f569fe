"""Supplementary architecture encodings for latency predictors: zero-cost proxies and arch2vec embeddings.

NASFLAT concatenates them to its graph embedding before the regression head. latbench ships both for every
NB201 cell (official index order) and every architecture of the ``help-fbnet`` dataset (its order):

```python
from latbench.predictor import encodings

zcp = encodings.load("nb201", "zcp")          # Encodings: .names, .archs, .values [15625, n] float32
rows = zcp.lookup(archs)                      # rows for any archs; missing ones are computed, not refused
emb = encodings.load("fbnet", "arch2vec")     # learned 16-dim embeddings, encoder weights included
table = encodings.compute_zcp("nb201", archs, seed=0)  # recompute proxies (needs torch)
```

Loading a shipped table needs numpy only; computing needs torch (``pip install 'latbench[build]'``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from latbench.predictor.encodings.errors import EncodingsError, EncodingsUnavailable, ZcpInterrupted
from latbench.predictor.encodings.store import KINDS, Encodings, load, save

if TYPE_CHECKING:
    from latbench.predictor.encodings.arch2vec import train_arch2vec
    from latbench.predictor.encodings.zcp import compute_zcp

_LAZY = {
    "compute_zcp": "latbench.predictor.encodings.zcp",
    "train_arch2vec": "latbench.predictor.encodings.arch2vec",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "KINDS",
    "Encodings",
    "EncodingsError",
    "EncodingsUnavailable",
    "ZcpInterrupted",
    "compute_zcp",
    "load",
    "save",
    "train_arch2vec",
]
