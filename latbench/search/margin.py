"""How far over the limit a prediction may be for its architecture to still run within it, from evidence.

A candidate whose measured latency ``t`` is within the limit ``L`` is predicted at ``t (1 + r)``, where
``r = (predicted - measured) / measured`` is its relative over-prediction. It is predicted within ``L (1 + m)``
whenever ``r <= m``, so the ``q``-quantile of ``r`` over out-of-sample (predicted, measured) pairs is the margin
that keeps a share ``q`` of the truly feasible candidates eligible for confirmation. Under-prediction needs no
margin (measuring the candidate catches it), so the margin is never below 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from latbench.errors import LatbenchError

MARGIN_QUANTILE = 0.9
"""Nine in ten truly feasible candidates stay eligible. Higher costs little, since confirmation walks candidates
best first within a measurement budget, but with ~20 pairs a 0.95+ quantile is just the largest error."""


def error_margin(
    predicted_ms: Sequence[float] | np.ndarray,
    measured_ms: Sequence[float] | np.ndarray,
    quantile: float = MARGIN_QUANTILE,
) -> float:
    """The ``quantile`` of relative over-prediction over the pairs, at least 0 (0 when there are no pairs)."""
    if not 0 < quantile <= 1:
        raise LatbenchError(f"the margin quantile must be in (0, 1], got {quantile}")
    predicted = np.asarray(predicted_ms, dtype=np.float64)
    measured = np.asarray(measured_ms, dtype=np.float64)
    if predicted.shape != measured.shape:
        raise LatbenchError(f"{len(predicted)} predictions but {len(measured)} measurements")
    usable = np.isfinite(predicted) & np.isfinite(measured) & (measured > 0)
    if not usable.any():
        return 0.0
    over = (predicted[usable] - measured[usable]) / measured[usable]
    return max(0.0, float(np.quantile(over, quantile)))
