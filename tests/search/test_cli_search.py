"""``latbench search`` with a real transferred predictor, finalists measured for real on this machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from latbench import datasets, predictor
from latbench.predictor.out_of_fold import recorded
from latbench.search import error_margin


def latbench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "latbench", *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """The shipped predictor transferred to raspi4 from 12 of its published latencies."""
    ds = datasets.load("help-nb201")
    archs = predictor.suggest("nb201", 12, "encoding", 0)
    where = {a: i for i, a in enumerate(ds.archs)}
    latency = ds.vector("raspi4")[[where[a] for a in archs]]
    path = tmp_path_factory.mktemp("search") / "raspi4.pt"
    predictor.transfer(predictor.load_pretrained("nb201"), "raspi4", archs, latency).save(path)
    return path, float(np.median(latency))


@pytest.mark.slow
def test_search_json_finalists_are_predicted_within_the_limit(model: tuple[Path, float]) -> None:
    path, limit = model
    result = latbench("search", "--model", str(path), "--space", "nb201", "--max-latency-ms", f"{limit}",
                      "--budget", "400", "--finalists", "4", "--verify", "none", "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["device"] == "raspi4" and payload["queried"] == 400
    finalists = payload["finalists"]
    assert len(finalists) == 4
    assert all(f["predicted_ms"] <= limit and f["upper_ms"] is None for f in finalists)
    again = predictor.Predictor.load(path).predict([f["arch"] for f in finalists])
    assert np.allclose(again, [f["predicted_ms"] for f in finalists])
    scores = [f["score"] for f in finalists]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.slow  # measures here
def test_search_measures_its_finalists_here(model: tuple[Path, float]) -> None:
    path, limit = model
    result = latbench("search", "--model", str(path), "--space", "nb201", "--max-latency-ms", f"{limit}",
                      "--budget", "200", "--finalists", "2", "--verify", "local")  # fmt: skip
    assert result.returncode == 0, result.stderr
    archs = result.stdout.split()
    assert len(archs) == 2
    assert "measured ms" in result.stderr and "measured within the limit" in result.stderr


@pytest.mark.slow  # measures here
def test_search_confirms_finalists_by_measuring_here(model: tuple[Path, float]) -> None:
    """Confirmation with this machine's real measurements of a raspi4 model's picks: a badly biased prediction.

    Whatever this machine measures, what is reported as confirmed was measured within the limit, within budget.
    """
    path, limit = model
    result = latbench("search", "--model", str(path), "--space", "nb201", "--max-latency-ms", f"{limit}",
                      "--budget", "200", "--finalists", "2", "--confirm", "4", "--json")  # fmt: skip
    confirmation = json.loads(result.stdout)["confirmation"]
    assert result.returncode == (0 if confirmation["confirmed"] else 1), result.stderr
    assert confirmation["budget"] == 4 and confirmation["spent"] == len(confirmation["measured"]) <= 4
    assert all(f["within_limit"] and f["measured_ms"] <= limit for f in confirmation["finalists"])
    assert confirmation["confirmed"] == len(confirmation["finalists"]) <= 2
    scores = [f["score"] for f in confirmation["finalists"]]
    assert scores == sorted(scores, reverse=True)
    assert ("confirmed 2 finalists" if confirmation["complete"] else "only ") in result.stderr


@pytest.mark.slow
def test_search_rates_by_the_interval_upper_bound_and_counts_what_it_promised(tmp_path: Path) -> None:
    """A model with out-of-fold errors: candidates are rated by their 90% upper bound, the finalists measured
    here, and of the measured ones, those the bound put within the limit and those measured within it counted."""
    ds = datasets.load("help-nb201")
    archs = predictor.suggest("nb201", 12, "encoding", 0)
    where = {a: i for i, a in enumerate(ds.archs)}
    latency = ds.vector("raspi4")[[where[a] for a in archs]]
    path = tmp_path / "raspi4.pt"
    model = predictor.transfer_and_validate(predictor.load_pretrained("nb201"), "raspi4", archs, latency)
    model.save(path)
    limit = float(np.median(latency))
    result = latbench("search", "--model", str(path), "--space", "nb201", "--max-latency-ms", f"{limit}",
                      "--budget", "200", "--finalists", "2", "--confirm", "0", "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "rating candidates by the upper end of their 90% interval" in result.stderr
    payload = json.loads(result.stdout)
    factor = float(np.exp(model.interval_halfwidth()))
    finalists = [f["arch"] for f in payload["finalists"]]
    assert np.allclose([f["upper_ms"] for f in payload["finalists"]], model.predict(finalists) * factor)
    assert np.allclose([f["predicted_ms"] for f in payload["finalists"]], model.predict(finalists))
    verified = payload["verified"]
    promised = [v for v in verified if v["upper_ms"] <= limit]
    assert payload["interval"] == {"level": 0.9, "factor": pytest.approx(factor), "promised": len(promised),
                                   "confirmed": sum(v["measured_ms"] <= limit for v in promised)}  # fmt: skip
    assert len(promised) == len(verified) == 2


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--space", "fbnet", "--max-latency-ms", "1"], 1, "predicts nb201 architectures, not fbnet"),
        (["--space", "nb201", "--max-latency-ms", "0.00001", "--verify", "none"], 1, "no architecture is predicted"),
        (["--space", "nb201", "--max-latency-ms", "1", "--verify", "maybe"], 2, "'maybe' is not one of"),
        (["--space", "nb201", "--max-latency-ms", "1", "--objective", "accuracy"], 2, "'accuracy' is not one of"),
    ],
)
@pytest.mark.slow
def test_bad_search_requests_fail_clearly(model: tuple[Path, float], args: list[str], code: int, message: str) -> None:
    path, _ = model
    result = latbench("search", "--model", str(path), *args)
    assert result.returncode == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_missing_model_file_fails_clearly(tmp_path: Path) -> None:
    result = latbench("search", "--model", str(tmp_path / "nope.pt"), "--space", "nb201", "--max-latency-ms", "1")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "nope.pt" in result.stderr


@pytest.mark.slow  # transfers
def test_search_starts_its_margin_from_the_transfers_out_of_fold_errors(tmp_path: Path) -> None:
    """``latbench predictor transfer`` keeps them in the model file; the first round's margin is their quantile."""
    path = tmp_path / "raspi4.pt"
    made = latbench("predictor", "transfer", "--model", "shipped:nb201", "--device", "raspi4", "--dataset",
                    "help-nb201", "--samples", "12", "--sampler", "encoding", "--out", str(path))  # fmt: skip
    assert made.returncode == 0, made.stderr
    evidence = recorded(predictor.Predictor.load(path))
    assert evidence is not None and len(evidence[0]) == 12
    start = error_margin(*evidence)
    assert start > 0  # a model that never over-predicts its held-out samples would make this test moot
    limit = float(np.median(evidence[1]))
    result = latbench("search", "--model", str(path), "--space", "nb201", "--max-latency-ms", f"{limit}",
                      "--budget", "200", "--finalists", "1", "--confirm", "2", "--level", "0", "--json",
                      "--verify", "local")  # fmt: skip  # raspi4's model: measured here only when asked
    confirmation = json.loads(result.stdout)["confirmation"]
    assert result.returncode == (0 if confirmation["confirmed"] else 1), result.stderr
    assert f"the margin starts at {start:.1%}, from 12 out-of-fold errors" in result.stderr
    assert confirmation["margins"][0] == pytest.approx(start)
