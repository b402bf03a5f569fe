"""Adaptive sampling: the stopping rule, the acquisition on a real task's device, and `predictor eval --sampler
adaptive`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from latbench import datasets
from latbench.predictor import adaptive
from latbench.predictor.errors import PredictorError
from latbench.predictor.evaluate import evaluate
from latbench.predictor.predictor import Predictor, pretrain_on
from latbench.ranking import spearman


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    wide = {**os.environ, "COLUMNS": "200"}  # a table row on one line, whatever terminal runs the tests
    return subprocess.run(
        [sys.executable, "-m", "latbench", *args], capture_output=True, text=True, timeout=300, env=wide
    )


def test_the_estimate_stops_a_device_only_with_a_standard_deviation_to_spare():
    sure = adaptive.Estimate(samples=15, srcc=0.97, srcc_std=0.01)
    unsure = adaptive.Estimate(samples=15, srcc=0.97, srcc_std=0.05)
    assert adaptive.stop_reason(sure, 15, 0.95, 60) == "target"
    assert adaptive.stop_reason(unsure, 15, 0.95, 60) is None
    assert adaptive.stop_reason(unsure, 60, 0.95, 60) == "budget"
    assert adaptive.stop_reason(None, 5, 0.95, 60) is None


def test_a_target_stop_waits_for_two_batches_of_results():
    certain = adaptive.Estimate(samples=5, srcc=0.999, srcc_std=0.0)
    assert adaptive.MIN_TARGET_RESULTS == 10
    assert adaptive.stop_reason(certain, 5, 0.95, 60) is None
    assert adaptive.stop_reason(certain, 9, 0.95, 60) is None
    assert adaptive.stop_reason(certain, 10, 0.95, 60) == "target"
    assert adaptive.stop_reason(certain, 5, 0.95, 5) == "budget"


def test_check_results_rescale_the_design_results_errors_as_far_as_their_number_allows():
    residual = np.array([0.1, -0.1, 0.1, -0.1, 0.4, -0.4])
    checked = np.array([False, False, False, False, True, True])
    leverage = np.full(6, 0.5)  # the design's errors, corrected: 0.05 each
    none = np.zeros(6, dtype=bool)
    out = adaptive._checked(residual, leverage, checked, none)
    np.testing.assert_allclose(out[checked], [0.2, -0.2])  # a check result's error is a typical candidate's
    ratio = (2 * 0.2**2 + adaptive.CHECK_PRIOR * 0.05**2) / ((2 + adaptive.CHECK_PRIOR) * 0.05**2)
    np.testing.assert_allclose(out[~checked], np.array([0.05, -0.05, 0.05, -0.05]) * np.sqrt(ratio))
    assert np.sqrt(ratio) > 2  # errors four times the design's: the design's more than doubled
    np.testing.assert_allclose(adaptive._checked(residual, leverage, none, none), residual * 0.5)


def test_a_gross_error_stays_out_of_the_rescaling():
    """One design result 40 times the others', and two checks like the others: the checks leave the design's
    errors as they are (with the gross one in the design's mean square they would have scaled them down by 30%)."""
    residual = np.array([0.1, -0.1, 0.1, -0.1, 4.0, 0.1, -0.1])
    checked = np.array([False, False, False, False, False, True, True])
    leverage = np.ones(7)
    gross = adaptive._gross(residual)
    assert gross.tolist() == [False, False, False, False, True, False, False]
    np.testing.assert_allclose(adaptive._checked(residual, leverage, checked, gross), residual)
    assert adaptive._checked(residual, leverage / 2, checked, gross)[4] == 4.0  # and keeps its size: no extrapolation
    shrunk = adaptive._checked(residual, leverage, checked, np.zeros(7, dtype=bool))
    assert abs(shrunk[0]) < 0.75 * 0.1


def test_gross_errors_lie_beyond_three_robust_standard_deviations():
    rng = np.random.default_rng(0)
    errors = rng.normal(scale=0.03, size=400)
    assert adaptive._gross(errors).mean() < 0.01  # a normal sample: 0.3% expected
    errors[:20] += 0.25  # a table's outliers, 5% of it
    assert adaptive._gross(errors)[:20].mean() > 0.9 and adaptive._gross(errors)[20:].mean() < 0.01
    assert not adaptive._gross(np.full(10, 0.02)).any()  # no spread: nothing stands out


def test_no_estimate_claims_more_certainty_than_a_random_check_of_as_many_results():
    rng = np.random.default_rng(0)
    n, truth = 30, 0.9
    # a pool whose SRCC with its noisy "measurements" is about 0.9, checked on 30 random architectures, 400 times
    predicted = rng.normal(size=20000)
    measured = predicted + rng.normal(scale=0.5, size=20000)
    pool = spearman(predicted, measured)
    assert abs(pool - truth) < 0.02
    checks = [spearman(predicted[i], measured[i]) for i in (rng.choice(20000, n, replace=False) for _ in range(400))]
    assert adaptive.check_spread(pool, n) == pytest.approx(np.std(checks), rel=0.25)
    assert adaptive.check_spread(0.9, 60) < adaptive.check_spread(0.9, 30) < adaptive.check_spread(0.8, 30)
    assert adaptive.check_spread(1.0, 30) == 0.0
    assert adaptive.check_spread(0.9, 3) == 1.0


@pytest.mark.parametrize(("target", "budget", "batch"), [(0.0, 60, 5), (1.5, 60, 5), (0.9, 3, 1), (0.9, 4, 5)])
def test_a_plan_that_cannot_run_is_refused(target: float, budget: int, batch: int):
    with pytest.raises(PredictorError):
        adaptive.check_plan(target, budget, batch)


@pytest.fixture(scope="module")
def fd_raspi4() -> tuple[Predictor, list[str], np.ndarray]:
    """FD's sources (a source table, no network) and its target raspi4's measured architectures."""
    task, ds = datasets.resolve_task("FD")
    latency = ds.vector("raspi4")
    measured = np.flatnonzero(~np.isnan(latency))
    return pretrain_on(ds, task.train, "ridge"), [ds.archs[i] for i in measured], latency[measured]


@pytest.mark.slow
def test_an_adaptive_run_stops_at_its_budget_with_an_estimate_near_the_truth(fd_raspi4):
    pretrained, archs, latency = fd_raspi4
    acquisition = adaptive.Acquisition(pretrained, archs, batch=5, seed=0)
    run = adaptive.run(acquisition, "raspi4", adaptive.table_oracle(archs, latency), budget=20)
    assert run.stop == "budget"
    assert len(run.archs) == len(set(run.archs)) == 20
    assert run.archs[:5] == acquisition.first()
    assert [e.samples for e in run.curve] == [5, 10, 15, 20]
    truth = spearman(run.model.predict(archs), latency)
    assert truth > 0.9
    assert abs(run.curve[-1].srcc - truth) < 0.05
    assert all(e.srcc_std >= adaptive.check_spread(e.srcc, e.samples) > 0 for e in run.curve)
    assert run.caveat == adaptive.SHORT_OF_TARGET  # short of a target (none here), the estimate never settled


@pytest.mark.slow
def test_a_reachable_target_stops_the_run_early(fd_raspi4):
    pretrained, archs, latency = fd_raspi4
    acquisition = adaptive.Acquisition(pretrained, archs, batch=5, seed=0)
    run = adaptive.run(acquisition, "raspi4", adaptive.table_oracle(archs, latency), budget=40, target_srcc=0.8)
    assert run.stop == "target"
    assert adaptive.MIN_TARGET_RESULTS + adaptive.VERIFY <= len(run.archs) < 40
    assert [e.samples for e in run.curve][:2] == [5, 10]
    assert run.curve[-1].srcc - run.curve[-1].srcc_std >= 0.8


@pytest.mark.slow
def test_a_target_stop_is_verified_on_random_check_results_the_design_never_picks(fd_raspi4):
    pretrained, archs, latency = fd_raspi4
    acquisition = adaptive.Acquisition(pretrained, archs, batch=5, seed=0)
    expected = adaptive.CHECK_SHARE * len(archs)
    assert abs(acquisition.check.sum() - expected) < 4 * np.sqrt(expected)
    # a pool in another order, or grown, keeps every architecture on its side of the check set
    regrown = adaptive.Acquisition(pretrained, archs[::-1][:4000], batch=5, seed=0)
    side = dict(zip(acquisition.candidates, acquisition.check, strict=True))
    assert all(side[a] == c for a, c in zip(regrown.candidates, regrown.check, strict=True))
    run = adaptive.run(acquisition, "raspi4", adaptive.table_oracle(archs, latency), budget=40, target_srcc=0.8)
    checked = acquisition.check[acquisition.rows(run.archs)]
    # the estimate reached the target after two batches of the design, then one batch of checks confirmed it
    assert run.stop == "target" and len(run.archs) == 15
    assert not checked[:10].any() and checked[10:].all()
    assert [(e.samples, e.checks) for e in run.curve] == [(5, 0), (10, 0), (15, 5)]
    assert all(e.srcc - e.srcc_std >= 0.8 for e in run.curve[1:])
    assert run.caveat is None  # verified: nothing to warn of


@pytest.mark.slow
@pytest.mark.parametrize("budget", [10, 12])
def test_a_target_stop_the_budget_leaves_too_few_checks_for_says_it_is_unverified(fd_raspi4, budget: int):
    """The run above with no room (10) or room for 2 of the 5 checks (12): it stops on its target, with them, and
    its caveat says how many of the checks it had."""
    pretrained, archs, latency = fd_raspi4
    acquisition = adaptive.Acquisition(pretrained, archs, batch=5, seed=0)
    run = adaptive.run(acquisition, "raspi4", adaptive.table_oracle(archs, latency), budget=budget, target_srcc=0.8)
    checks = budget - adaptive.MIN_TARGET_RESULTS
    assert run.stop == "target" and len(run.archs) == budget
    assert acquisition.check[acquisition.rows(run.archs)].sum() == checks == run.curve[-1].checks
    assert run.caveat == adaptive.UNVERIFIED.format(checks=checks, verify=adaptive.VERIFY)
    assert f"{checks} of {adaptive.VERIFY} random check results" in run.caveat


@pytest.mark.slow
def test_check_results_the_model_gets_wrong_keep_a_device_measuring(fd_raspi4):
    """The same device, but its check candidates measured with 50% noise (the pool off the design's points is
    harder than they say): the estimate falls when the checks come in, and the device runs to its budget."""
    pretrained, archs, latency = fd_raspi4
    acquisition = adaptive.Acquisition(pretrained, archs, batch=5, seed=0)
    noise = np.exp(np.random.default_rng(0).normal(scale=0.5, size=len(archs)))
    noisy = np.where(acquisition.check, latency * noise, latency)
    run = adaptive.run(acquisition, "raspi4", adaptive.table_oracle(archs, noisy), budget=30, target_srcc=0.8)
    assert run.stop == "budget" and len(run.archs) == 30
    assert run.curve[1].srcc - run.curve[1].srcc_std >= 0.8  # the design's own errors said stop
    assert run.curve[2].srcc < 0.8  # the checks said no
    assert acquisition.check[acquisition.rows(run.archs)].sum() == adaptive.VERIFY  # and are not asked again


@pytest.mark.slow
def test_a_batch_spans_the_predicted_range_and_pins_the_linear_fit_down_better_than_random_picks(fd_raspi4):
    pretrained, archs, latency = fd_raspi4
    pool = archs[:600]
    acquisition = adaptive.Acquisition(pretrained, pool, batch=5, seed=0)
    first = acquisition.first()
    measured = first + [a for a in pool if a not in first][:5]
    step = acquisition.step("raspi4", measured, adaptive.table_oracle(archs, latency)(measured))
    free = [a for a in pool if a not in set(measured)]
    rank = {a: i for i, a in enumerate(sorted(free, key=dict(zip(free, step.model.predict(free))).__getitem__))}
    assert sorted(rank[a] * 5 // len(free) for a in step.next) == [0, 1, 2, 3, 4]

    z = acquisition.design

    def spread_left(batch: list[str]) -> float:
        """The pool's mean ridge prediction variance once ``batch`` is measured too."""
        seen = z[acquisition.rows(measured + batch)]
        inverse = np.linalg.inv(adaptive.DESIGN_PRIOR * np.eye(z.shape[1]) + seen.T @ seen)
        return float(np.einsum("ij,jk,ik->i", z, inverse, z).mean())

    rng = np.random.default_rng(0)
    random_batches = [spread_left(list(rng.choice(free, size=5, replace=False))) for _ in range(20)]
    assert spread_left(step.next) < min(random_batches)


@pytest.mark.slow
def test_the_saved_fast_model_predicts_like_the_acquisition_model(fd_raspi4, tmp_path):
    pretrained, archs, latency = fd_raspi4
    acquisition = adaptive.Acquisition(pretrained, archs, batch=5, seed=1)
    step = acquisition.step("raspi4", archs[:8], latency[:8])
    assert len(step.next) == 5 and not set(step.next) & set(archs[:8])
    loaded = Predictor.load(step.model.save(tmp_path / "raspi4.pt"))
    assert loaded.target == "raspi4"
    np.testing.assert_allclose(loaded.predict(archs[:50]), step.model.predict(archs[:50]))


@pytest.mark.slow
def test_a_space_without_source_devices_is_sampled_from_its_cost_features():
    from latbench.spaces import get_space

    space = get_space("fbnet")
    archs = space.sample(300, seed=3)
    macs = np.exp(space.cost_features(archs)[:, 0])
    acquisition = adaptive.Acquisition(adaptive.source_free("fbnet", archs), archs, batch=4, seed=0)
    run = adaptive.run(acquisition, "new", adaptive.table_oracle(archs, macs / 1e6), budget=12)
    assert len(run.archs) == 12 and run.stop == "budget"
    assert spearman(run.model.predict(archs), macs) > 0.95


@pytest.mark.slow
def test_eval_with_the_adaptive_sampler_scores_each_device_and_keeps_its_estimate():
    result = evaluate("FD", samples=10, trials=1, method="ridge", sampler="adaptive")
    assert set(result.estimated) == set(result.srcc) == {"fpga", "raspi4", "eyeriss"}
    assert result.mean_srcc > 0.85
    document = result.as_dict()
    assert set(document["estimated_srcc"]) == set(document["estimated_srcc_std"]) == set(document["per_device"])
    assert all(0 < sd < 0.5 for sd in document["estimated_srcc_std"].values())
    assert "no random check results" in document["estimate_caveat"]
    assert evaluate("FD", samples=10, trials=1, method="ridge").as_dict().keys().isdisjoint({"estimated_srcc_std"})


@pytest.mark.slow
def test_eval_refuses_an_unknown_sampler_in_one_line():
    done = cli("predictor", "eval", "--task", "FD", "--sampler", "clever", "--method", "ridge")
    assert done.returncode == 2  # a usage error, refused before pretraining
    assert "'clever' is not one of: random, encoding, adaptive" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_eval_cli_runs_the_adaptive_sampler():
    done = cli("predictor", "eval", "--task", "FD", "--samples", "5", "--trials", "1", "--sampler", "adaptive",
               "--method", "ridge", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert set(json.loads(done.stdout)["estimated_srcc"]) == {"fpga", "raspi4", "eyeriss"}


@pytest.mark.slow
def test_eval_cli_shows_the_adaptive_estimate_with_its_spread_and_caveat():
    done = cli("predictor", "eval", "--task", "FD", "--samples", "5", "--trials", "1", "--sampler", "adaptive",
               "--method", "ridge")  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = {line.split("│")[1].strip(): line.split("│")[2:-1] for line in done.stdout.splitlines() if "│" in line}
    assert set(rows) >= {"fpga", "raspi4", "eyeriss", "mean"}
    for device in ("fpga", "raspi4", "eyeriss"):
        assert re.fullmatch(r"0\.\d{3} ± 0\.\d{3}", rows[device][1].strip()), rows[device]
    assert "its own estimate" in done.stdout and "no random check results" in done.stdout


def test_a_budget_too_small_to_verify_a_target_stop_is_named_before_the_campaign_starts():
    assert adaptive.unverified_budget(adaptive.MIN_TARGET_RESULTS + adaptive.VERIFY) is None
    said = adaptive.unverified_budget(12)
    assert said and "budget of 12" in said and "stops unverified" in said


@pytest.mark.slow
def test_a_gross_error_reaches_the_pool_at_its_rate_not_its_neighbours_alone(fd_raspi4):
    """Two of 20 results (the design's edge points, near few candidates) 65% off: the estimate is what errors drawn
    from all 20 alike make of the pool; drawn from the nearest, the two would have reached a candidate or two."""
    pretrained, archs, latency = fd_raspi4
    acquisition = adaptive.Acquisition(pretrained, archs, batch=5, seed=0)
    first = acquisition.first()
    rows = acquisition.rows(first + [a for a in archs[::50] if a not in first][:15])
    rng = np.random.default_rng(0)
    residual = rng.normal(scale=0.02, size=20)
    residual[:2] = 0.5
    gross = adaptive._gross(residual)
    assert gross.tolist() == [True, True] + [False] * 18
    predicted = np.log(latency)
    p = predicted[acquisition.estimate_rows]
    uniform = np.mean([spearman(p, p + residual[rng.integers(20, size=len(p))]) for _ in range(40)])
    estimate = acquisition._estimate(rows, predicted, residual, gross, 0).srcc
    as_neighbours = acquisition._estimate(rows, predicted, residual, np.zeros(20, dtype=bool), 0).srcc
    assert abs(estimate - uniform) < 0.01
    assert as_neighbours > uniform + 0.1  # 0.97 against 0.83


@pytest.mark.slow
def test_a_table_with_outliers_keeps_its_device_measuring():
    """OA's titan_rtx_1: about one measurement in ten lies 25% above the rest of the table, whatever the
    architecture. Its two outliers among 35 results had reached a candidate or two each, and the device stopped on
    a target of 0.95 at 0.98 against a true 0.875; drawn at their rate, they keep it measuring, and the estimate
    stays near the truth."""
    task, ds = datasets.resolve_task("OA")
    latency = ds.vector("titan_rtx_1")
    measured = np.flatnonzero(~np.isnan(latency))
    archs, latency = [ds.archs[i] for i in measured], latency[measured]
    acquisition = adaptive.Acquisition(pretrain_on(ds, task.train, "ridge"), archs, batch=5, seed=3)
    run = adaptive.run(acquisition, "titan_rtx_1", adaptive.table_oracle(archs, latency), budget=40, target_srcc=0.95)
    truth = spearman(run.model.predict(archs), latency)
    assert run.stop == "budget" and truth < 0.9
    assert abs(run.curve[-1].srcc - truth) < 0.05
