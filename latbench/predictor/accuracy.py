"""Absolute accuracy of predicted milliseconds, and intervals calibrated on out-of-fold errors.

A latency limit is set in milliseconds, so a predictor's ranking (SRCC) is not enough: which architectures pass
depends on how far each prediction is from the measurement. ``accuracy`` reports the relative error the way
nn-Meter and LitePred do (share within +/-10%), plus its median and 90th percentile.

Intervals are split-conformal on the log ratio ``|log(measured / predicted)|`` of out-of-fold pairs (each pair
predicted by a transfer that did not see it): with ``n`` pairs, the ``ceil((n + 1) level)``-th smallest ratio
bounds a new architecture's ratio with probability at least ``level``, whatever the error's distribution, as
long as the new architecture is drawn like the samples were. Multiplicative, so a 3 ms and a 300 ms prediction
get the same relative width.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from latbench.predictor.errors import PredictorError

LEVEL = 0.9
"""Default interval coverage."""


def relative_errors(
    predicted_ms: Sequence[float] | np.ndarray, measured_ms: Sequence[float] | np.ndarray
) -> np.ndarray:
    """``|predicted - measured| / measured`` per pair."""
    predicted = np.asarray(predicted_ms, dtype=np.float64)
    measured = np.asarray(measured_ms, dtype=np.float64)
    if predicted.shape != measured.shape:
        raise PredictorError(f"{predicted.size} predictions but {measured.size} measurements")
    return np.abs(predicted - measured) / measured


def accuracy(predicted_ms: Sequence[float] | np.ndarray, measured_ms: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Median and 90th-percentile relative error, and the shares within +/-5% and +/-10% of the measurement."""
    errors = relative_errors(predicted_ms, measured_ms)
    if errors.size == 0:
        raise PredictorError("accuracy needs at least one (predicted, measured) pair")
    return {
        "median_rel_error": float(np.median(errors)),
        "p90_rel_error": float(np.quantile(errors, 0.9)),
        "within_5": float(np.mean(errors <= 0.05)),
        "within_10": float(np.mean(errors <= 0.10)),
    }


def check_level(level: float) -> float:
    if not 0 < level < 1:
        raise PredictorError(f"the interval level must be between 0 and 1 (exclusive), got {level}")
    return level


def log_halfwidth(
    predicted_ms: Sequence[float] | np.ndarray, measured_ms: Sequence[float] | np.ndarray, level: float = LEVEL
) -> float:
    """The split-conformal half-width in log space: the ``ceil((n + 1) level)``-th smallest ``|log ratio|``.

    With too few pairs for that rank (``n < level / (1 - level)``, 9 at 0.9) the interval is unbounded (inf).
    """
    check_level(level)
    predicted = np.asarray(predicted_ms, dtype=np.float64)
    measured = np.asarray(measured_ms, dtype=np.float64)
    if predicted.shape != measured.shape:
        raise PredictorError(f"{predicted.size} predictions but {measured.size} measurements")
    ok = np.isfinite(predicted) & np.isfinite(measured) & (predicted > 0) & (measured > 0)
    ratios = np.sort(np.abs(np.log(measured[ok] / predicted[ok])))
    rank = math.ceil((len(ratios) + 1) * level)
    return float(ratios[rank - 1]) if 1 <= rank <= len(ratios) else math.inf


def interval(ms: np.ndarray, halfwidth: float) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)`` = ``ms`` scaled down and up by ``exp(halfwidth)``."""
    factor = math.exp(halfwidth) if math.isfinite(halfwidth) else math.inf
    return ms / factor, ms * factor


def coverage(low: np.ndarray, high: np.ndarray, measured_ms: np.ndarray) -> float:
    """The share of measurements inside their ``[low, high]``."""
    return float(np.mean((measured_ms >= low) & (measured_ms <= high)))


CHANCE_Z = 1.645
"""The one-sided 5% quantile of the standard normal distribution."""


def chance_srcc(n: int) -> float:
    """The SRCC over ``n`` pairs that predictions unrelated to the measurements exceed one time in twenty (the
    null distribution's normal approximation, standard deviation ``1 / sqrt(n - 1)``): 0.38 at 20 pairs."""
    return CHANCE_Z / math.sqrt(n - 1) if n > 1 else math.inf


def ranking_caveat(srcc: float, n: int) -> str | None:
    """Why an out-of-fold ``srcc`` over ``n`` samples says the model does not rank the device, if it does: below
    ``chance_srcc``, the ranking is no better than chance, whatever its milliseconds' errors look like."""
    bound = chance_srcc(n)
    if srcc >= bound:
        return None
    return (
        f"the out-of-fold SRCC {srcc:.3f} over {n} samples is no better than chance (unrelated predictions exceed "
        f"{min(bound, 1.0):.2f} one time in twenty): the model does not rank this device's architectures; check the "
        "measurements (noise, a mixed setup) or measure more"
    )
