"""How far over the limit a prediction may be for its architecture to still run within it, from evidence.

A candidate whose measured latency ``t`` is within the limit ``L`` is predicted at ``t (1 + r)``, where
``r = (predicted - measured) / measured`` is its relative over-prediction. It is predicted within ``L (1 + m)``
whenever ``r <= m``, so the ``q``-quantile of ``r`` over out-of-sample (predicted, measured) pairs is the margin
that keeps a share ``q`` of the truly feasible candidates eligible for confirmation. Under-prediction needs no
margin (measuring the candidate catches it), so the margin is never below 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from latbench.errors import LatbenchError

if TYPE_CHECKING:
    from latbench.predictor import Predictor

MARGIN_QUANTILE = 0.9
"""Nine in ten truly feasible candidates stay eligible. Higher costs little, since confirmation walks candidates
best first within a measurement budget, but with ~20 pairs a 0.95+ quantile is just the largest error."""
FOLDS = 5


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


def cross_validated_errors(
    pretrained: Predictor,
    device: str,
    archs: Sequence[str],
    latency_ms: Sequence[float] | np.ndarray,
    folds: int = FOLDS,
    method: str | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold (predicted, measured) ms of the transfer samples: each fold predicted by a transfer from the rest.

    Not the transferred model's residuals: its network is fine-tuned on these very samples, so they understate
    its error on new architectures (raspi4 in help-nb201, 20 samples, 0.9-quantile of over-prediction: 3.4% on
    the samples themselves, 5.3% out of fold, 8.5% over all 15,625). Leave-one-out would cost one transfer per
    sample; ``folds`` transfers (about half a second each for NB201 on one core) come close, and each is fitted
    on fewer samples than the final model, which errs on the side of a wider margin.
    """
    from latbench.predictor import transfer

    latency = np.asarray(latency_ms, dtype=np.float64)
    n = len(latency)
    if len(archs) != n:
        raise LatbenchError(f"{len(archs)} architectures but {n} latencies")
    folds = min(folds, n)
    if folds < 2 or n - -(-n // folds) < 3:
        raise LatbenchError(f"cross-validating a transfer needs at least 4 samples and 2 folds, got {n} and {folds}")
    predicted = np.empty(n)
    index = np.arange(n)
    for k in range(folds):
        held = index[k::folds]
        kept = np.setdiff1d(index, held)
        model = transfer(pretrained, device, [archs[i] for i in kept], latency[kept], method=method, seed=seed)
        predicted[held] = model.predict([archs[i] for i in held])
    return predicted, latency
