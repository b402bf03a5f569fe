"""Per-device calibration of predicted milliseconds, chosen by cross-validated error on the transfer samples.

The ensemble ranks well but fits its members in log milliseconds, where a network's latency is not additive.
On most devices it is additive in milliseconds: a least-squares fit of ``ms`` on one-hot (position, operation)
columns over all 15,625 NB201 cells of eyeriss, fpga and titan_rtx_256 leaves a median error of 0.0-0.2%, and on
FBNet's fpga, raspi4 and eyeriss 0.0%. Twenty samples cannot fit 30 (NB201) or 198 (FBNet) such costs, but they
fit a ridge on the space's cost features summed over positions (MACs, parameters, launches, activations, counts
of each operation: ``additive_features``) in milliseconds.

Neither model wins everywhere (the additive one is exact on accelerators, the ensemble better where the
sources resemble the target), so each device gets a blend ``exp(w log ensemble + (1 - w) log additive)`` with
``w`` in ``WEIGHTS`` chosen by the mean ``|log(measured / predicted)|`` on the same folds as the ensemble's
out-of-fold pairs. The blend's own cross-validated pairs are what the model's intervals are sized on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from latbench.predictor.errors import ModelFileError
from latbench.predictor.stats import folds_of, ridge_fit, zscore_stats

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
"""Weights of the ranking model's log prediction tried against the additive model's (1: the model unchanged)."""
ALPHAS = 10.0 ** np.arange(-4, 5)
"""Ridge penalties for the additive model, chosen by leave-one-out (z-scored features)."""
FLOOR = 0.1
"""The additive model predicts no less than this fraction of the fastest sample (a linear fit can go negative)."""
INFO_KEY = "calibration"
"""``Predictor.info`` key of the fitted calibration (``Calibration.to_info``)."""


def additive_features(names: Sequence[str], raw: np.ndarray) -> np.ndarray:
    """The cost features as sums over positions: the ``log_`` columns of ``cost_features`` exponentiated back.

    ``names`` are the space's ``cost_feature_names``, ``raw`` its ``cost_features`` (n, k).
    """
    out = np.array(raw, dtype=np.float64, copy=True)
    logged = [j for j, name in enumerate(names) if name.startswith("log_")]
    out[:, logged] = np.exp(out[:, logged])
    return out


@dataclass(frozen=True)
class Additive:
    """``ms = intercept + coef . z(features)``, floored at ``floor``."""

    mean: np.ndarray
    std: np.ndarray
    coef: np.ndarray
    intercept: float
    floor: float

    @classmethod
    def fit(cls, features: np.ndarray, latency_ms: np.ndarray) -> Additive:
        mean, std = zscore_stats(features)
        coef, intercept = ridge_fit((features - mean) / std, latency_ms, ALPHAS)
        return cls(mean, std, coef, intercept, FLOOR * float(latency_ms.min()))

    def predict(self, features: np.ndarray) -> np.ndarray:
        return np.maximum((features - self.mean) / self.std @ self.coef + self.intercept, self.floor)

    def to_info(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "coef": self.coef.tolist(),
                "intercept": self.intercept, "floor": self.floor}  # fmt: skip

    @classmethod
    def from_info(cls, info: dict[str, Any]) -> Additive:
        mean, std, coef = (np.asarray(info[k], dtype=np.float64) for k in ("mean", "std", "coef"))
        return cls(mean, std, coef, float(info["intercept"]), float(info["floor"]))


def cross_validated(features: np.ndarray, latency_ms: np.ndarray, folds: int) -> np.ndarray:
    """Out-of-fold predictions of the additive model, on the folds ``out_of_fold`` uses (sample ``i`` in fold
    ``i mod folds``)."""
    predicted = np.empty(len(latency_ms))
    for held, kept in folds_of(len(latency_ms), folds):
        predicted[held] = Additive.fit(features[kept], latency_ms[kept]).predict(features[held])
    return predicted


def blend(weight: float, model_ms: np.ndarray, additive_ms: np.ndarray) -> np.ndarray:
    """The geometric blend ``model^weight * additive^(1 - weight)``."""
    if weight == 1.0:
        return model_ms
    return np.exp(weight * np.log(model_ms) + (1.0 - weight) * np.log(additive_ms))


def log_error(predicted_ms: np.ndarray, measured_ms: np.ndarray) -> float:
    """Mean ``|log(measured / predicted)|``: the relative error, symmetric in over- and under-prediction."""
    return float(np.mean(np.abs(np.log(measured_ms / predicted_ms))))


@dataclass(frozen=True)
class Calibration:
    """A device's blend of the model and an additive cost model, and the evidence it was chosen on."""

    weight: float
    additive: Additive
    errors: dict[float, float]
    """Cross-validated ``log_error`` of each weight tried."""
    out_of_fold_ms: np.ndarray
    """The blend's out-of-fold predictions of the samples (the chosen weight's)."""
    model_out_of_fold_ms: np.ndarray
    """The model's own out-of-fold predictions, uncalibrated (to compare against)."""

    def to_info(self) -> dict[str, Any]:
        return {"weight": self.weight, "additive": self.additive.to_info(),
                "errors": {str(w): e for w, e in self.errors.items()},
                "model_out_of_fold_ms": self.model_out_of_fold_ms.tolist()}  # fmt: skip


def fit(features: np.ndarray, latency_ms: np.ndarray, model_out_of_fold_ms: np.ndarray, folds: int) -> Calibration:
    """Choose the blend weight with the least cross-validated error; ties keep the model (weight 1).

    ``features``: ``additive_features`` of the samples; ``model_out_of_fold_ms``: the model's out-of-fold
    predictions of them on ``folds`` folds (``out_of_fold.out_of_fold``).
    """
    latency = np.asarray(latency_ms, dtype=np.float64)
    model_oof = np.asarray(model_out_of_fold_ms, dtype=np.float64)
    additive_oof = cross_validated(features, latency, folds)
    candidates = {w: blend(w, model_oof, additive_oof) for w in WEIGHTS}
    errors = {w: log_error(p, latency) for w, p in candidates.items()}
    best = min(sorted(errors, reverse=True), key=lambda w: errors[w])
    return Calibration(best, Additive.fit(features, latency), errors, candidates[best], model_oof)


def from_info(info: dict[str, Any]) -> tuple[float, Additive]:
    """The weight and additive model a saved ``Calibration.to_info`` holds."""
    try:
        return float(info["weight"]), Additive.from_info(info["additive"])
    except (TypeError, KeyError, ValueError):
        raise ModelFileError(f"the model's {INFO_KEY!r} record is malformed") from None
