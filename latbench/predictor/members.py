"""Predictors fitted on a target device's few measurements alone: FLOPs, ridge, NNLS, and their ensemble.

Each member maps ``Inputs`` (what is known of an architecture before the target measures it) to predicted log
milliseconds on the target. The ensemble weighs each member by its leave-one-out error on the target's own
samples, so it leans on source devices where they resemble the target, and on cost features (launches, MACs,
activations) where they do not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from latbench.predictor.errors import PredictorError
from latbench.predictor.stats import nnls_fit, ridge_fit
from latbench.ranking import spearman

TOP_SOURCES = 3
TOP_COSTS = 4
"""Cost features the sparse member (``cost-top``) keeps: ten results cannot pin down fifteen (FBNet) for a device
family the sources lack, but they can pin down four (k = 2..5 compared on the development tasks; 4 best)."""
WEIGHT_POWER = 2
"""Ensemble weight = (the least leave-one-out error / the member's) ** WEIGHT_POWER (errors: mean squared, log ms)."""


@dataclass(frozen=True)
class Inputs:
    """Per architecture: z-scored cost features (n, k), MACs in millions (n,), z-scored source log-latencies
    (n, D; NaN unknown), source latencies in ms (n, D), the graph network's score on the target (n,) if any, and
    the cost features as plain sums over the architecture (n, k; logged ones exponentiated) if given."""

    costs: np.ndarray
    macs: np.ndarray
    sources: np.ndarray
    sources_ms: np.ndarray
    network: np.ndarray | None = None
    totals: np.ndarray | None = None

    def rows(self, index: np.ndarray) -> Inputs:
        return Inputs(
            self.costs[index],
            self.macs[index],
            self.sources[index],
            self.sources_ms[index],
            None if self.network is None else self.network[index],
            None if self.totals is None else self.totals[index],
        )

    @property
    def known(self) -> np.ndarray:
        """Per architecture: whether its source values are known (measured or imputed; ``sources.impute``)."""
        return np.full(len(self.costs), self.sources.shape[1] > 0) & ~np.isnan(self.sources).any(axis=1)

    @property
    def has_sources(self) -> bool:
        return bool(self.known.all())


Params = dict[str, Any]


def _linear(columns: Callable[[Inputs], np.ndarray]) -> tuple[Callable[..., Params], Callable[..., np.ndarray]]:
    def fit(x: Inputs, y: np.ndarray) -> Params:
        coef, intercept = ridge_fit(columns(x), y)
        return {"coef": coef.tolist(), "intercept": intercept}

    def predict(x: Inputs, p: Params) -> np.ndarray:
        return columns(x) @ np.asarray(p["coef"]) + p["intercept"]

    return fit, predict


def _cost(column: int) -> tuple[Callable[..., Params], Callable[..., np.ndarray]]:
    """One cost feature alone (0: log MACs, 1: log parameters), its ranking kept, scaled to the target."""

    def fit(x: Inputs, y: np.ndarray) -> Params:
        values = x.costs[:, column]
        slope = max(float(np.polyfit(values, y, 1)[0]) if np.ptp(values) > 0 else 1.0, 1e-6)
        return {"slope": slope, "intercept": float(y.mean() - slope * values.mean())}

    def predict(x: Inputs, p: Params) -> np.ndarray:
        return x.costs[:, column] * p["slope"] + p["intercept"]

    return fit, predict


def _nnls_fit(x: Inputs, y: np.ndarray) -> Params:
    """NNLS of the target's ms on its ``TOP_SOURCES`` best-correlated sources (ms) plus MACs and a constant."""
    correlation = np.nan_to_num([spearman(x.sources_ms[:, d], y) for d in range(x.sources_ms.shape[1])], nan=0.0)
    top = [int(d) for d in np.argsort(correlation)[::-1][:TOP_SOURCES]]
    scale = np.abs(x.sources_ms[:, top]).max(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    design = np.c_[x.sources_ms[:, top] / scale, x.macs, np.ones(len(y))]
    coef = nnls_fit(design, np.exp(y))
    return {"top": top, "scale": scale.tolist(), "coef": coef.tolist()}


def _nnls_predict(x: Inputs, p: Params) -> np.ndarray:
    design = np.c_[x.sources_ms[:, p["top"]] / np.asarray(p["scale"]), x.macs, np.ones(len(x.costs))]
    return np.log(np.maximum(design @ np.asarray(p["coef"]), 1e-9))


def _totals(x: Inputs) -> np.ndarray:
    if x.totals is None:
        raise PredictorError("this member needs the cost features as sums")
    return x.totals


def _cost_nnls_fit(x: Inputs, y: np.ndarray) -> Params:
    """The target's ms as a non-negative sum of the costs (MACs, launches, activation traffic, op counts) and a
    constant: an additive roofline, few enough free signs to hold at 20 samples."""
    scale = np.abs(_totals(x)).max(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    coef = nnls_fit(np.c_[_totals(x) / scale, np.ones(len(y))], np.exp(y))
    return {"scale": scale.tolist(), "coef": coef.tolist()}


def _cost_nnls_predict(x: Inputs, p: Params) -> np.ndarray:
    design = np.c_[_totals(x) / np.asarray(p["scale"]), np.ones(len(x.costs))]
    return np.log(np.maximum(design @ np.asarray(p["coef"]), 1e-9))


def _cost_top_fit(x: Inputs, y: np.ndarray) -> Params:
    """Ridge on the ``TOP_COSTS`` cost features most correlated (absolute Pearson) with the target's samples."""
    centred, yc = x.costs - x.costs.mean(axis=0), y - y.mean()
    norm = np.sqrt((centred**2).sum(axis=0) * (yc**2).sum())
    correlation = np.abs(centred.T @ yc) / np.where(norm > 0, norm, np.inf)  # 0 for a constant column or target
    top = [int(j) for j in np.argsort(correlation)[::-1][:TOP_COSTS]]
    coef, intercept = ridge_fit(x.costs[:, top], y)
    return {"top": top, "coef": coef.tolist(), "intercept": intercept}


def _cost_top_predict(x: Inputs, p: Params) -> np.ndarray:
    return x.costs[:, p["top"]] @ np.asarray(p["coef"]) + p["intercept"]


def _network_fit(x: Inputs, y: np.ndarray) -> Params:
    if x.network is None:
        raise PredictorError("this member needs a transferred graph network")
    slope, intercept = np.polyfit(x.network, y, 1) if np.ptp(x.network) > 0 else (0.0, float(y.mean()))
    return {"slope": float(max(slope, 1e-6)), "intercept": float(intercept)}


def _network_predict(x: Inputs, p: Params) -> np.ndarray:
    assert x.network is not None
    return x.network * p["slope"] + p["intercept"]


_ridge = _linear(lambda x: np.c_[x.sources, x.costs[:, :1]])
_cost_ridge = _linear(lambda x: x.costs)
_ridge_all = _linear(lambda x: np.c_[x.sources, x.costs])

MEMBERS: dict[str, tuple[Callable[..., Params], Callable[..., np.ndarray], bool]] = {
    "flops": (*_cost(0), False),
    "params": (*_cost(1), False),
    "ridge": (*_ridge, True),
    "nnls": (_nnls_fit, _nnls_predict, True),
    "cost-ridge": (*_cost_ridge, False),
    "cost-nnls": (_cost_nnls_fit, _cost_nnls_predict, False),
    "cost-top": (_cost_top_fit, _cost_top_predict, False),
    "ridge-all": (*_ridge_all, True),
    "network": (_network_fit, _network_predict, False),
}
"""name -> (fit, predict, needs source latencies)."""


def fit_member(name: str, x: Inputs, y: np.ndarray) -> Params:
    return MEMBERS[name][0](x, y)


def predict_member(name: str, x: Inputs, params: Params) -> np.ndarray:
    return MEMBERS[name][1](x, params)


def loo_predictions(name: str, x: Inputs, y: np.ndarray) -> np.ndarray:
    """The member's prediction of each target sample when fitted on the others."""
    n = len(y)
    predictions = np.empty(n)
    for i in range(n):
        keep = np.arange(n) != i
        params = fit_member(name, x.rows(keep), y[keep])
        predictions[i] = predict_member(name, x.rows(np.array([i])), params)[0]
    return predictions


def fit_ensemble(x: Inputs, y: np.ndarray, members: list[str]) -> Params:
    """Fit every member on all samples; weigh each by (least leave-one-out error / its own) ** WEIGHT_POWER.

    The error is the mean squared leave-one-out error in log ms. Chosen over the Spearman correlation of the
    same predictions on the protocol's dev splits: at 20 samples a few noisy ones (phones' whole milliseconds)
    can rank every member near 0, and a sharp power of that noise picked one member at random; the squared error
    keeps the magnitudes, so close members share the weight. The graph network is fine-tuned on the samples
    themselves, so it has no cheap leave-one-out error; it gets the median weight of the others (a prior: as
    trusted as a typical member, never the most trusted by default).
    """
    fitted: dict[str, Params] = {}
    errors: dict[str, float] = {}
    for name in members:
        fitted[name] = fit_member(name, x, y)
        if name != "network":
            errors[name] = max(float(np.mean((loo_predictions(name, x, y) - y) ** 2)), 1e-12)
    least = min(errors.values(), default=1.0)
    weights = {name: (least / error) ** WEIGHT_POWER for name, error in errors.items()}
    if "network" in members:
        weights["network"] = float(np.median(list(weights.values()))) if weights else 1.0
    return {"members": fitted, "weights": weights}


def predict_ensemble(x: Inputs, params: Params) -> np.ndarray:
    """The weighted mean of the members' log-ms predictions; for an architecture without source values the
    members reading them drop out, and the others' weights decide."""
    total = np.zeros(len(x.costs))
    weight_sum = np.zeros(len(x.costs))
    known = x.known
    for name, member in params["members"].items():
        weight = params["weights"][name]
        rows = known if MEMBERS[name][2] else np.ones(len(x.costs), dtype=bool)
        if weight <= 0 or not rows.any():
            continue
        total[rows] += weight * predict_member(name, x.rows(np.flatnonzero(rows)), member)
        weight_sum[rows] += weight
    if not weight_sum.all():
        raise PredictorError("no member of the ensemble can predict these architectures")
    return total / weight_sum
