"""What ``latbench predictor encodings show`` reports: each table's columns, shape, provenance, and how each
column ranks architectures compared with FLOPs (Spearman), the first sanity check of a latency feature."""

from __future__ import annotations

from typing import Any

import numpy as np

from latbench.predictor.encodings.errors import EncodingsUnavailable
from latbench.predictor.encodings.store import KINDS, Encodings, check, load
from latbench.ranking import spearman
from latbench.spaces import get_space


def srcc(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (``latbench.ranking``); 0 in the tables where a column has no ranking."""
    return float(np.nan_to_num(spearman(a, b), nan=0.0))


def flops(enc: Encodings) -> np.ndarray:
    if "flops" in enc.names:
        return enc.values[:, enc.names.index("flops")]
    space = get_space(enc.space)
    return np.array([space.costs(a).mflops for a in enc.archs])


def describe_table(enc: Encodings) -> dict[str, Any]:
    reference = flops(enc)
    return {
        "space": enc.space,
        "kind": enc.kind,
        "n_archs": len(enc.archs),
        "names": list(enc.names),
        "shape": list(enc.values.shape),
        "meta": enc.meta,
        "srcc_vs_flops": {n: round(srcc(enc.values[:, i], reference), 4) for i, n in enumerate(enc.names)},
    }


def describe(space: str) -> dict[str, Any]:
    """Every kind of ``space``: its description, or ``{"available": false, "error": ...}`` when missing."""
    space, _ = check(space, KINDS[0])
    result: dict[str, Any] = {}
    for kind in KINDS:
        try:
            result[kind] = {"available": True} | describe_table(load(space, kind))
        except EncodingsUnavailable as exc:
            result[kind] = {"available": False, "error": str(exc)}
    return result


def srcc_vs_latency(enc: Encodings, latency: Any, devices: list[str]) -> dict[str, dict[str, float]]:
    """``{device: {feature: SRCC}}`` over the architectures that both ``enc`` and the dataset ``latency`` hold."""
    column = {a: i for i, a in enumerate(latency.archs)}
    rows = [i for i, a in enumerate(enc.archs) if a in column]
    cols = [column[enc.archs[i]] for i in rows]
    result: dict[str, dict[str, float]] = {}
    for device in devices:
        y = latency.vector(device)[cols]
        ok = ~np.isnan(y)
        result[device] = {n: round(srcc(enc.values[rows][ok, j], y[ok]), 3) for j, n in enumerate(enc.names)}
    return result
