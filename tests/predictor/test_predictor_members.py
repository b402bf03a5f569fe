"""The ensemble's members and weights on made-up targets whose true model is known."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from latbench.predictor import adaptive, members
from latbench.predictor.predictor import ENSEMBLE
from latbench.ranking import spearman


def inputs(n: int, seed: int = 0) -> members.Inputs:
    rng = np.random.default_rng(seed)
    totals = rng.uniform(1.0, 10.0, size=(n, 3))
    costs = (totals - totals.mean(axis=0)) / totals.std(axis=0)
    sources = rng.normal(size=(n, 4))
    return members.Inputs(costs, totals[:, 0], sources, np.exp(sources), network=rng.normal(size=n), totals=totals)


@pytest.mark.slow  # imports scipy
def test_cost_nnls_recovers_an_additive_target_and_keeps_its_signs():
    x = inputs(20)
    y = np.log(2.0 * x.totals[:, 0] + 0.5 * x.totals[:, 2] + 1.0)  # type: ignore[index]
    params = members.fit_member("cost-nnls", x, y)
    assert min(params["coef"]) >= 0
    fresh = inputs(500, seed=1)
    truth = np.log(2.0 * fresh.totals[:, 0] + 0.5 * fresh.totals[:, 2] + 1.0)  # type: ignore[index]
    assert np.allclose(members.predict_member("cost-nnls", fresh, params), truth, atol=1e-6)


def test_the_ensemble_trusts_the_member_with_the_least_leave_one_out_error():
    x = inputs(20)
    y = 0.8 * x.costs[:, 0] - 0.3 * x.costs[:, 1] + np.random.default_rng(2).normal(scale=0.05, size=20)
    fitted = members.fit_ensemble(x, y, ["network", "ridge", "cost-ridge", "flops"])
    weights = fitted["weights"]
    assert weights["cost-ridge"] == 1.0 and weights["ridge"] < 0.1 and weights["flops"] < weights["cost-ridge"]
    assert weights["network"] == np.median([weights[m] for m in ("ridge", "cost-ridge", "flops")])
    fresh = inputs(300, seed=3)
    truth = 0.8 * fresh.costs[:, 0] - 0.3 * fresh.costs[:, 1]
    predicted = members.predict_ensemble(fresh, fitted)
    assert np.corrcoef(predicted, truth)[0, 1] > 0.9 and np.median(np.abs(predicted - truth)) < 0.3


def test_architectures_without_source_values_are_left_to_the_other_members():
    x = inputs(20)
    y = 0.8 * x.costs[:, 0]
    fitted = members.fit_ensemble(x, y, ["ridge", "cost-ridge"])
    fresh = inputs(10, seed=4)
    fresh.sources[:5] = np.nan
    mixed = members.predict_ensemble(fresh, fitted)
    alone = members.predict_member("cost-ridge", fresh, fitted["members"]["cost-ridge"])
    assert np.allclose(mixed[:5], alone[:5]) and not np.allclose(mixed[5:], alone[5:])


def sparse_costs(n: int, seed: int) -> members.Inputs:
    """Fifteen cost features, one of them constant; latency follows two of them."""
    rng = np.random.default_rng(seed)
    costs = rng.normal(size=(n, 15))
    costs[:, 7] = 0.0
    return members.Inputs(costs, np.ones(n), np.empty((n, 0)), np.empty((n, 0)))


def sparse_latency(x: members.Inputs, noise: float, seed: int) -> np.ndarray:
    noise_draw = np.random.default_rng(seed).normal(scale=noise, size=len(x.costs))
    return 1.0 * x.costs[:, 3] + 0.6 * x.costs[:, 11] + noise_draw


def test_cost_top_keeps_the_few_features_that_drive_latency_and_beats_a_ridge_on_all_of_them_at_ten_samples():
    fresh = sparse_costs(2000, seed=99)
    truth = sparse_latency(fresh, 0.0, seed=0)
    top, ridge = [], []
    for seed in range(10):
        x = sparse_costs(10, seed)
        y = sparse_latency(x, 0.1, seed + 100)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the constant feature must not raise a division warning
            params = members.fit_member("cost-top", x, y)
        assert len(params["top"]) == members.TOP_COSTS and 7 not in params["top"]
        assert 3 in params["top"]
        top.append(spearman(members.predict_member("cost-top", fresh, params), truth))
        ridge_params = members.fit_member("cost-ridge", x, y)
        ridge.append(spearman(members.predict_member("cost-ridge", fresh, ridge_params), truth))
    assert np.mean(top) > np.mean(ridge) + 0.05  # 0.87 against 0.75 when written
    assert sum(t > r for t, r in zip(top, ridge, strict=True)) >= 7  # 8 of 10 when written


def test_cost_top_is_in_the_default_ensemble_and_the_adaptive_fast_transfer():
    assert "cost-top" in ENSEMBLE and "cost-top" in adaptive.fast_members() and not members.MEMBERS["cost-top"][2]
    assert adaptive.fast_members() == [m for m in ENSEMBLE if m != "network"]
