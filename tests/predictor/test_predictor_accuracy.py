"""Relative-error figures and conformal intervals on known numbers, and their coverage on held-out devices."""

from __future__ import annotations

import math

import numpy as np
import pytest

from latbench import datasets
from latbench.predictor import PredictorError, pretrain_on, transfer, transfer_and_validate
from latbench.predictor.accuracy import accuracy, coverage, interval, log_halfwidth


def test_accuracy_on_known_numbers() -> None:
    figures = accuracy([110.0, 95.0, 100.0, 130.0], [100.0, 100.0, 100.0, 100.0])  # errors 10%, 5%, 0%, 30%
    assert figures["median_rel_error"] == pytest.approx(0.075)
    assert figures["p90_rel_error"] == pytest.approx(0.24)  # numpy's linear quantile of [0, .05, .1, .3]
    assert figures["within_5"] == 0.5 and figures["within_10"] == 0.75
    with pytest.raises(PredictorError, match="3 predictions but 2 measurements"):
        accuracy([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(PredictorError, match="at least one"):
        accuracy([], [])


def test_the_half_width_is_the_finite_sample_conformal_rank() -> None:
    ratios = np.linspace(0.01, 0.19, 19)  # |log(measured / predicted)| of 19 pairs
    predicted = np.full(19, 10.0)
    measured = predicted * np.exp(ratios * np.where(np.arange(19) % 2, 1, -1))
    assert log_halfwidth(predicted, measured, 0.9) == pytest.approx(ratios[17])  # ceil(20 * 0.9) = 18th smallest
    assert log_halfwidth(predicted, measured, 0.5) == pytest.approx(ratios[9])  # ceil(10) = 10th
    assert log_halfwidth(predicted[:5], measured[:5], 0.9) == math.inf  # too few pairs for a 90% bound
    low, high = interval(np.array([10.0]), math.log(1.2))
    assert low[0] == pytest.approx(10 / 1.2) and high[0] == pytest.approx(12.0)
    assert coverage(low, high, np.array([12.5])) == 0.0
    with pytest.raises(PredictorError, match="between 0 and 1"):
        log_halfwidth(predicted, measured, 1.0)


def test_conformal_intervals_cover_their_level_on_exchangeable_errors() -> None:
    """Over many draws of 20 calibration pairs, a 90% interval covers a new pair 90-95% of the time."""
    rng = np.random.default_rng(0)
    hits = []
    for _ in range(2000):
        errors = rng.standard_t(3, size=21) * 0.1  # heavy-tailed log errors
        measured = 5.0 * np.exp(errors)
        width = log_halfwidth(np.full(20, 5.0), measured[:20], 0.9)
        low, high = interval(np.array([5.0]), width)
        hits.append(coverage(low, high, measured[20:]))
    assert 0.89 <= float(np.mean(hits)) <= 0.94


@pytest.mark.slow
def test_intervals_cover_about_90_percent_on_the_held_out_devices_of_task_nd() -> None:
    """Pretrained on ND's 9 source devices; on each of its 6 target devices a transfer from 20 samples, its 90%
    intervals judged on 500 architectures it did not see (ND's coverage in docs/benchmarks.md: 90.7%)."""
    ds = datasets.load("help-nb201")
    task = datasets.get_task("ND")
    pre = pretrain_on(ds.select(list(task.devices)), task.train)
    rng = np.random.default_rng(0)
    rates = []
    for device in task.test:
        latency = ds.vector(device)
        pick = rng.choice(len(ds.archs), 520, replace=False)
        archs, names = [ds.archs[i] for i in pick[:20]], [ds.archs[i] for i in pick[20:]]
        model = transfer_and_validate(pre, device, archs, latency[pick[:20]])
        ms, low, high = model.predict_interval(names)
        assert np.allclose(ms, model.predict(names)) and np.all((low < ms) & (ms < high))
        rates.append(coverage(low, high, latency[pick[20:]]))
    assert 0.8 <= float(np.mean(rates)) <= 0.97, rates
    plain = transfer(pre, task.test[0], archs, latency[pick[:20]])
    with pytest.raises(PredictorError, match="no out-of-fold errors"):
        plain.predict_interval(names[:3])
