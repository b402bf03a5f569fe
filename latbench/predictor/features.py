"""What a predictor reads of an architecture: its genes, the op graph, and analytic cost features.

Each space defines them (``SearchSpace.encode_genes``, ``cost_feature_names``, ``cost_features_genes``); this module
is the predictor's view of them over genome matrices, the form every predictor table and model file keeps.
Every architecture of a space shares one adjacency, so a batch is an op-id matrix plus one adjacency matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from latbench.spaces import get_space


@dataclass(frozen=True)
class ArchBatch:
    """Architectures as graph-predictor input: ``ops`` (n, nodes) vocabulary ids, one shared ``adjacency``."""

    ops: np.ndarray
    adjacency: np.ndarray
    vocabulary_size: int


_PARSED: dict[str, dict[str, tuple[int, ...]]] = {}
_CACHE_LIMIT = 500_000


def codes(space: str, archs: Sequence[str]) -> np.ndarray:
    """Each architecture's genome (``SearchSpace.to_genes``) as an int64 (n, genes) matrix, validating every string.

    Parsed strings are remembered (up to ``_CACHE_LIMIT`` per space), so ranking the same candidates again
    skips the parser.
    """
    sp = get_space(space)
    seen = _PARSED.setdefault(sp.name, {})
    rows = []
    for a in archs:
        row = seen.get(a) if isinstance(a, str) else None
        if row is None:
            row = sp.to_genes(a)
            if len(seen) < _CACHE_LIMIT:
                seen[a] = row
        rows.append(row)
    return np.array(rows, dtype=np.int64).reshape(len(rows), len(sp.genes))


def graph_batch(space: str, arch_codes: np.ndarray) -> ArchBatch:
    sp = get_space(space)
    ops, adjacency = sp.encode_genes(arch_codes)
    return ArchBatch(ops=ops, adjacency=adjacency, vocabulary_size=len(sp.vocabulary))


def cost_feature_names(space: str) -> list[str]:
    return get_space(space).cost_feature_names()


def cost_features(space: str, arch_codes: np.ndarray) -> np.ndarray:
    """The cost features (``cost_feature_names``) of each architecture, float64 (n, k)."""
    return get_space(space).cost_features_genes(arch_codes)
