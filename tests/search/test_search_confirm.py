"""Confirmation by measurement against a published device's real latencies (help-nb201, raspi4).

The "measurement" is the dataset's raspi4 column, one real latency per NB201 architecture; the "predictor" is
that column skewed by a bias and 3% per-architecture noise, the way a transferred predictor errs near the limit.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

import numpy as np
import pytest

from latbench import datasets, predictor
from latbench.errors import LatbenchError
from latbench.search import confirm, cross_validated_errors, error_margin, search

DEVICE = "raspi4"


@pytest.fixture(scope="module")
def real() -> dict[str, float]:
    ds = datasets.load("help-nb201")
    return dict(zip(ds.archs, ds.vector(DEVICE).tolist(), strict=True))


@pytest.fixture(scope="module")
def limit(real: dict[str, float]) -> float:
    return float(np.percentile(list(real.values()), 30))


def skewed(real: dict[str, float], bias: float) -> Callable[[Sequence[str]], np.ndarray]:
    def noise(arch: str) -> float:
        return float(np.random.default_rng(zlib.crc32(arch.encode())).normal(0, 0.03))

    return lambda archs: np.array([real[a] * bias * np.exp(noise(a)) for a in archs])


class Device:
    """Measures by the dataset's real latencies; remembers every request."""

    def __init__(self, real: dict[str, float], broken: Sequence[str] = ()) -> None:
        self.real, self.broken = real, set(broken)
        self.calls: list[list[str]] = []

    def __call__(self, archs: list[str]) -> dict[str, float]:
        self.calls.append(list(archs))
        return {a: self.real[a] for a in archs if a not in self.broken}

    @property
    def archs(self) -> list[str]:
        return [a for call in self.calls for a in call]


def evidence(real: dict[str, float], predict: Callable[[Sequence[str]], np.ndarray]) -> tuple[np.ndarray, list]:
    sample = list(real)[::800]
    return predict(sample), [real[a] for a in sample]


def test_under_prediction_confirmed_finalists_all_run_within_the_limit(real: dict[str, float], limit: float) -> None:
    predict = skewed(real, 0.88)
    result = search(predict, "nb201", limit, budget=600, finalists=5, seed=0)
    assert any(real[c.arch] > limit for c in result.finalists), "the case must fool plain prediction"
    device = Device(real)
    # many candidates tie at the best live parameter count, and those predicted fastest are the most under-predicted
    confirmation = confirm(result, device, evidence=evidence(real, predict), budget=30)
    assert confirmation.complete and len(confirmation.finalists) == 5
    assert all(v.within_limit and v.measured_ms == real[v.arch] for v in confirmation.finalists)
    assert [v.score for v in confirmation.finalists] == sorted((v.score for v in confirmation.finalists), reverse=True)
    assert confirmation.spent == len(device.archs) <= 30
    assert len(set(device.archs)) == len(device.archs)
    for v in confirmation.measured:
        assert v.predicted_ms == result.history.latency[v.arch]


def test_rounds_walk_candidates_best_objective_first(real: dict[str, float], limit: float) -> None:
    predict = skewed(real, 0.88)
    result = search(predict, "nb201", limit, budget=600, finalists=4, seed=2)
    device = Device(real)
    confirmation = confirm(result, device, margin=0.0)
    assert device.calls[0] == [c.arch for c in result.finalists]
    eligible = result.history.feasible(limit)
    assert device.archs == [c.arch for c in eligible[: len(device.archs)]]
    assert confirmation.margins == [0.0] * len(device.calls)


def test_over_prediction_confirmation_finds_a_better_best(real: dict[str, float]) -> None:
    # at the 30th percentile no live parameter count above the plain finalists' runs within the limit
    limit = float(np.percentile(list(real.values()), 35))
    predict = skewed(real, 1.15)
    result = search(predict, "nb201", limit, budget=600, finalists=5, seed=0)
    plain_best = max(c.score for c in result.finalists if real[c.arch] <= limit)
    for prior in (evidence(real, predict), None):
        confirmation = confirm(result, Device(real), evidence=prior)
        assert confirmation.complete and confirmation.spent <= 15
        assert confirmation.finalists[0].score > plain_best
        assert all(v.within_limit for v in confirmation.finalists)
        assert max(confirmation.margins) == pytest.approx(0.2, abs=0.05)


def test_without_evidence_the_first_round_is_the_predicted_finalists(real: dict[str, float], limit: float) -> None:
    result = search(skewed(real, 1.0), "nb201", limit, budget=400, finalists=3, seed=1)
    device = Device(real)
    confirmation = confirm(result, device)
    assert device.calls[0] == [c.arch for c in result.finalists]
    assert confirmation.margins[0] == 0.0


def test_the_budget_is_respected_and_a_shortfall_is_said(real: dict[str, float], limit: float) -> None:
    result = search(skewed(real, 0.5), "nb201", limit, budget=400, finalists=5, seed=0)
    device = Device(real)
    confirmation = confirm(result, device, budget=4)
    assert confirmation.spent == len(device.archs) == 4
    assert confirmation.stopped == "budget" and not confirmation.complete
    assert all(v.within_limit for v in confirmation.finalists)
    assert confirmation.as_dict()["confirmed"] == len(confirmation.finalists) < 5


def test_failed_measurements_count_against_the_budget(real: dict[str, float], limit: float) -> None:
    result = search(skewed(real, 1.0), "nb201", limit, budget=400, finalists=3, seed=0)
    broken = [result.finalists[0].arch]
    confirmation = confirm(result, Device(real, broken), budget=6)
    assert confirmation.failed == broken
    assert confirmation.spent == len(confirmation.measured) + 1 <= 6
    assert broken[0] not in {v.arch for v in confirmation.finalists}


def test_error_margin_is_the_quantile_of_over_prediction() -> None:
    measured = np.full(10, 10.0)
    predicted = measured * (1 + np.linspace(-0.3, 0.15, 10))
    assert error_margin(predicted, measured) == pytest.approx(np.quantile(np.linspace(-0.3, 0.15, 10), 0.9))
    assert error_margin(measured * 0.8, measured) == 0.0
    assert error_margin([], []) == 0.0
    with pytest.raises(LatbenchError, match="quantile"):
        error_margin(predicted, measured, quantile=0.0)


@pytest.mark.slow
def test_cross_validated_errors_predict_each_sample_out_of_fold(real: dict[str, float]) -> None:
    archs = predictor.suggest("nb201", 12, "encoding", 0)
    latency = np.array([real[a] for a in archs])
    pred, meas = cross_validated_errors(predictor.load_pretrained("nb201"), DEVICE, archs, latency, folds=3)
    assert np.array_equal(meas, latency)
    assert np.all(np.isfinite(pred)) and np.all(pred > 0)
    assert np.median(np.abs(pred - meas) / meas) < 0.3
    assert 0.0 <= error_margin(pred, meas) < 0.5
    with pytest.raises(LatbenchError, match="at least 4 samples"):
        cross_validated_errors(predictor.load_pretrained("nb201"), DEVICE, archs[:3], latency[:3])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"finalists": 0}, "at least 1 finalist"),
        ({"budget": -1}, "cannot be negative"),
        ({"margin": -0.1}, "margin cannot be negative"),
    ],
)
def test_bad_confirmation_settings_are_refused(real: dict[str, float], kwargs: dict, message: str) -> None:
    result = search(skewed(real, 1.0), "nb201", 20.0, budget=100, finalists=2)
    with pytest.raises(LatbenchError, match=message):
        confirm(result, Device(real), **kwargs)
