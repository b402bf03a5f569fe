"""The ensemble's members and weights on made-up targets whose true model is known."""

from __future__ import annotations

import numpy as np
import pytest

from latbench.predictor import members


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
