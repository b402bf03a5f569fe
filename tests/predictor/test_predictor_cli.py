"""``latbench predictor`` and ``latbench predict`` as a user runs them: outputs, files and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from latbench import datasets
from latbench.predictor import Predictor, out_of_fold

LATBENCH = [sys.executable, "-m", "latbench"]


def cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "LATBENCH_HOME": str(home)}
    return subprocess.run([*LATBENCH, *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.slow  # pretrains a predictor
def test_pretrain_transfer_predict_round_trip(tmp_path: Path) -> None:
    pre = tmp_path / "pre.pt"
    done = cli(
        "predictor", "pretrain", "--space", "fbnet", "--devices", "2080ti_1,raspi4",
        "--samples-per-device", "50", "--epochs", "2", "--out", str(pre), home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(pre) and pre.is_file()
    model = tmp_path / "model.pt"
    done = cli(
        "predictor", "transfer", "--model", str(pre), "--device", "fpga", "--dataset", "help-fbnet",
        "--samples", "10", "--out", str(model), home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(model)
    assert "cross-validating the transfer (5 folds)" in done.stderr
    assert "out of fold, 10 samples" in done.stderr and "±10%" in done.stderr
    assert "uncalibrated" in done.stderr and "calibrated to fpga: blend weight" in done.stderr
    assert "warning" not in done.stderr
    predicted, measured = out_of_fold.recorded(Predictor.load(model))  # type: ignore[misc]
    fpga = datasets.load("help-fbnet").vector("fpga")
    assert len(predicted) == len(measured) == 10 and np.all(np.isin(measured, fpga))
    assert np.all(np.isfinite(predicted)) and min(predicted) > 0 and predicted != measured
    arch = datasets.load("help-fbnet").archs[0]
    done = cli("predict", "--model", str(model), "--arch", arch, "--json", home=tmp_path)
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    predictions = payload["predictions"]
    assert list(predictions) == [arch] and predictions[arch] > 0
    low, high = payload["intervals"][arch]
    assert payload["level"] == 0.9 and low < predictions[arch] < high
    done = cli("predict", "--model", str(model), "--arch", arch, home=tmp_path)
    name, ms, bounds = done.stdout.strip().split("\t")
    assert name == arch and float(ms) == pytest.approx(predictions[arch], rel=1e-5)
    assert [float(v) for v in bounds.strip("[]").split(", ")] == pytest.approx([low, high], rel=1e-5)
    wider = json.loads(cli("predict", "--model", str(model), "--arch", arch, "--level", "0.5", "--json",
                           home=tmp_path).stdout)["intervals"][arch]  # fmt: skip
    assert low <= wider[0] and wider[1] <= high
    assert cli("predict", "--model", str(model), home=tmp_path).returncode == 2
    unknown = cli(
        "predictor", "transfer", "--model", str(pre), "--device", "nope", "--dataset", "help-fbnet",
        "--out", str(model), home=tmp_path,
    )  # fmt: skip
    assert unknown.returncode == 1 and "no device 'nope'" in unknown.stderr
    done = cli(
        "predictor", "transfer", "--model", str(pre), "--device", "fpga", "--dataset", "help-fbnet",
        "--samples", "10", "--folds", "0", "--out", str(model), home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0 and out_of_fold.recorded(Predictor.load(model)) is None, done.stderr
    done = cli("predict", "--model", str(model), "--arch", arch, home=tmp_path)
    assert done.returncode == 0 and len(done.stdout.split("\t")) == 2  # no out-of-fold errors: no interval
    echo = tmp_path / "echo.pt"  # raspi4 is a source: its samples are the model's own input, read back
    done = cli("predictor", "transfer", "--model", str(pre), "-d", "raspi4", "--dataset", "help-fbnet",
               "--samples", "10", "--folds", "0", "--out", str(echo), home=tmp_path)  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == str(echo), done.stderr
    assert "warning: the samples of raspi4 are source device raspi4's own latencies" in done.stderr
    done = cli("predict", "--model", str(echo), "--arch", arch, home=tmp_path)
    assert done.returncode == 0 and "not a transfer's" in done.stderr and done.stdout.startswith(arch)
    bad = tmp_path / "bad.pt"
    bad.write_text("x")
    refused = cli("predict", "--model", str(bad), "--arch", arch, home=tmp_path)
    assert refused.returncode == 1 and "not a latbench predictor" in refused.stderr


@pytest.mark.slow
def test_suggest_and_usage_errors(tmp_path: Path) -> None:
    done = cli("predictor", "suggest", "--space", "nb201", "--samples", "4", home=tmp_path)
    assert done.returncode == 0 and len(done.stdout.split()) == 4
    assert cli("predictor", "suggest", "--space", "vit", home=tmp_path).returncode == 1
    assert cli("predictor", "eval", home=tmp_path).returncode == 2
    magic = cli("predictor", "eval", "--task", "FD", "--method", "magic", home=tmp_path)
    assert magic.returncode == 2 and "'magic' is not one of: latbench" in magic.stderr


@pytest.mark.slow  # transfers on every task
def test_eval_writes_the_issue_json_and_runs_tasks_on_imported_devices(tmp_path: Path) -> None:
    missing = cli("predictor", "eval", "--task", "NA", "--method", "flops", home=tmp_path)
    assert missing.returncode == 1 and "embedded_tpu_edge_tpu_int8" in missing.stderr
    help201 = datasets.load("help-nb201")
    rng = np.random.default_rng(0)
    rows = ["arch,device,latency_ms"]
    for name, like in (("desktop_gpu_gtx_1080ti_fp32", "1080ti_32"), ("embedded_tpu_edge_tpu_int8", "fpga")):
        some = rng.choice(len(help201.archs), 2000, replace=False)
        noisy = help201.vector(like)[some] * rng.uniform(0.9, 1.1, len(some))
        rows += [f"{help201.archs[i]},{name},{float(v)!r}" for i, v in zip(some, noisy)]
    table = tmp_path / "eagle.csv"
    table.write_text("\n".join(rows) + "\n")
    assert cli("dataset", "import", str(table), "--space", "nb201", "--name", "eagle", home=tmp_path).returncode == 0
    out, plot = tmp_path / "na.json", tmp_path / "na.png"
    done = cli(
        "predictor", "eval", "--task", "NA", "--method", "ridge", "--samples", "10", "--trials", "2",
        "--out", str(out), "--plot", str(plot), "--folds", "5", home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert set(result) == {"task", "space", "method", "samples", "trials", "mean_srcc", "std_srcc", "per_device",
                           "interval_level", "accuracy", "per_device_accuracy"}  # fmt: skip
    figures = {"median_rel_error", "p90_rel_error", "within_5", "within_10", "coverage"}
    assert set(result["accuracy"]) == figures and set(result["per_device_accuracy"]) == set(result["per_device"])
    assert 0 < result["accuracy"]["median_rel_error"] <= result["accuracy"]["p90_rel_error"]
    assert 0 <= result["accuracy"]["within_5"] <= result["accuracy"]["within_10"] <= 1
    assert 0.5 < result["accuracy"]["coverage"] <= 1 and "90% coverage" in done.stderr
    assert result["task"] == "NA" and result["samples"] == 10 and result["trials"] == 2
    assert set(result["per_device"]) == {"eyeriss", "desktop_gpu_gtx_1080ti_fp32", "embedded_tpu_edge_tpu_int8"}
    assert 0.5 < result["mean_srcc"] <= 1.0
    assert "0.893" in done.stderr  # the paper's NASFLAT figure beside ours
    assert done.stdout == f"{out}\n"  # with --out, the table goes to stderr
    assert plot.read_bytes()[:4] == b"\x89PNG"
    printed = cli(
        "predictor", "eval", "--task", "NA", "--method", "ridge", "--samples", "10", "--trials", "2", "--folds", "5",
        "--json", home=tmp_path,
    )  # fmt: skip
    assert printed.returncode == 0, printed.stderr
    assert json.loads(printed.stdout) == result


@pytest.mark.slow  # measures, then transfers
def test_transfer_from_results_uses_stable_results_and_says_how_many_it_left_out(
    tmp_path: Path, artifact_cache
) -> None:
    from latbench.resultfile import read_results, write_results

    results = tmp_path / "r.csv"
    measured = subprocess.run(
        [*LATBENCH, "measure", "--space", "nb201", "--samples", "5", "--seed", "9", "--min-runs", "10",
         "--min-time", "0.05", "--warmup-runs", "2", "--warmup-time", "0.02", "--no-reference", "--out", str(results)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "LATBENCH_CACHE_DIR": str(artifact_cache)},
    )  # fmt: skip
    assert measured.returncode == 0, measured.stderr
    rows = read_results(results)
    marked = [dict(r, stable=True, flags="") for r in rows[:4]] + [dict(rows[4], stable=False, flags="high_cv")]
    write_results(results, marked)
    args = ["predictor", "transfer", "--model", "shipped:nb201", "--device", "desk", "--results", str(results),
            "--folds", "0", "--out", str(tmp_path / "m.pt")]  # fmt: skip
    done = cli(*args, home=tmp_path)
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stderr.split())
    assert "1 of 5 results are unstable (high variation between runs)" in text
    assert "left out 1 unstable result (use --include-unstable to keep them)" in text
    assert "from 4 measured architecture(s)" in text
    everything = cli(*args, "--include-unstable", home=tmp_path)
    assert everything.returncode == 0 and "from 5 measured architecture(s)" in " ".join(everything.stderr.split())
