"""``latbench search``'s report: bad option values are usage errors, the JSON keeps the prediction apart from the
upper bound the search compared with the limit, with the same keys in every mode, and a search that finds
nothing, or stops early, says why."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from latbench import datasets, predictor

ROW = {"arch", "score", "predicted_ms", "upper_ms", "measured_ms", "within_limit"}
NON_DEGENERATE_NB201 = 15_625 - 341


def latbench(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "250"}
    return subprocess.run(
        [sys.executable, "-m", "latbench", *args], capture_output=True, text=True, env=env, timeout=600
    )


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, predictor.Predictor]:
    """A raspi4 model transferred from 12 latencies with 50% noise: its 90% interval is about 15x wide."""
    ds = datasets.load("help-nb201")
    archs = predictor.suggest("nb201", 12, "encoding", 0)
    where = {a: i for i, a in enumerate(ds.archs)}
    noise = np.exp(np.random.default_rng(0).normal(0, 0.5, len(archs)))
    latency = ds.vector("raspi4")[[where[a] for a in archs]] * noise
    model = predictor.transfer_and_validate(predictor.load_pretrained("nb201"), "raspi4", archs, latency)
    path = tmp_path_factory.mktemp("report") / "wide.pt"
    model.save(path)
    assert np.exp(model.interval_halfwidth(0.9)) > 5
    return path, predictor.Predictor.load(path)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--objective", "parms"),
        ("--method", "evo"),
        ("--proxy", "foo"),
        ("--max-latency-ms", "-1"),
        ("--max-latency-ms", "0"),
        ("--verify", "nonee"),
    ],
)
@pytest.mark.slow  # a subprocess each
def test_bad_option_values_are_usage_errors_refused_before_any_work(tmp_path: Path, option: str, value: str) -> None:
    """Refused while the options are parsed: the model file, which does not exist, is not even opened."""
    args = {"--max-latency-ms": "1", option: value}
    result = latbench("search", "--model", str(tmp_path / "nope.pt"), "--space", "nb201",
                      *(x for pair in args.items() for x in pair))  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert option in result.stderr and "nope.pt" not in result.stderr and "Traceback" not in result.stderr


def run_json(path: Path, *args: str) -> dict:
    result = latbench("search", "--model", str(path), "--space", "nb201", "--verify", "none", "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.slow
def test_json_rows_keep_the_prediction_apart_from_the_upper_bound(wide: tuple[Path, predictor.Predictor]) -> None:
    path, model = wide
    factor = float(np.exp(model.interval_halfwidth(0.9)))
    bounded = run_json(path, "--max-latency-ms", "15", "--budget", "300", "--finalists", "3")
    plain = run_json(path, "--max-latency-ms", "15", "--budget", "300", "--finalists", "3", "--level", "0")
    assert bounded.keys() == plain.keys()
    assert bounded["interval"]["factor"] == pytest.approx(factor) and plain["interval"] is None
    assert bounded["verified"] == plain["verified"] == [] and bounded["agreement"] is bounded["confirmation"] is None
    for payload in (bounded, plain):
        rows = payload["finalists"]
        assert len(rows) == 3 and all(set(r) == ROW for r in rows)
        assert rows == payload["predicted_finalists"]
        assert np.allclose([r["predicted_ms"] for r in rows], model.predict([r["arch"] for r in rows]))
        assert all(r["measured_ms"] is None and r["within_limit"] is None for r in rows)
    upper = [r["upper_ms"] for r in bounded["finalists"]]
    assert np.allclose(upper, [r["predicted_ms"] * factor for r in bounded["finalists"]]) and max(upper) <= 15
    assert all(r["upper_ms"] is None and r["predicted_ms"] <= 15 for r in plain["finalists"])
    text = latbench("search", "--model", str(path), "--space", "nb201", "--verify", "none", "--max-latency-ms", "15",
                    "--budget", "300", "--finalists", "3")  # fmt: skip
    assert text.stdout.split() == [r["arch"] for r in bounded["finalists"]]
    assert "predicted ms" in text.stderr and "90% upper ms" in text.stderr


@pytest.mark.slow  # measures here
def test_after_a_confirmation_the_finalists_are_the_confirmed_ones(wide: tuple[Path, predictor.Predictor]) -> None:
    path, model = wide
    result = latbench("search", "--model", str(path), "--space", "nb201", "--max-latency-ms", "15", "--budget",
                      "200", "--finalists", "1", "--confirm", "2", "--json")  # fmt: skip
    payload = json.loads(result.stdout)
    confirmation = payload["confirmation"]
    assert result.returncode == (0 if confirmation["confirmed"] else 1), result.stderr
    assert payload["finalists"] == confirmation["finalists"]
    assert all(r["within_limit"] and r["measured_ms"] <= 15 for r in payload["finalists"])
    assert payload["verified"] == confirmation["measured"] and 1 <= len(payload["verified"]) <= 2
    assert len(payload["predicted_finalists"]) == 1
    rows = payload["verified"]
    assert all(set(r) == ROW for r in rows)
    predicted = np.array([r["predicted_ms"] for r in rows])
    measured = np.array([r["measured_ms"] for r in rows])
    assert np.allclose(predicted, model.predict([r["arch"] for r in rows]))
    assert np.allclose([r["upper_ms"] for r in rows], predicted * payload["interval"]["factor"])
    assert set(payload["agreement"]) == {"within_limit", "median_rel_error"}
    assert payload["agreement"]["median_rel_error"] == pytest.approx(np.median(np.abs(predicted - measured) / measured))


@pytest.mark.slow
def test_a_limit_only_the_interval_misses_says_to_rate_by_the_prediction(
    wide: tuple[Path, predictor.Predictor],
) -> None:
    """The predictions fit under 1 ms, their 15x upper bounds do not: the hint is --level 0, not a larger budget."""
    path, _ = wide
    result = latbench("search", "--model", str(path), "--space", "nb201", "--max-latency-ms", "1", "--verify", "none")
    assert result.returncode == 1
    assert "within the limit" in result.stderr and "--level 0" in result.stderr and "--budget" not in result.stderr
    assert run_json(path, "--max-latency-ms", "1", "--level", "0")["finalists"]


@pytest.mark.slow
def test_a_search_that_stops_before_its_budget_says_so(wide: tuple[Path, predictor.Predictor]) -> None:
    path, _ = wide
    result = latbench("search", "--model", str(path), "--space", "nb201", "--verify", "none", "--json",
                      "--max-latency-ms", "100", "--method", "random", "--budget", "20000", "--level", "0")  # fmt: skip
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["stopped_early"] and payload["budget"] == 20_000
    assert 15_000 < payload["queried"] <= NON_DEGENERATE_NB201
    assert f"stopped after {payload['queried']} of its budget of 20000" in result.stderr
