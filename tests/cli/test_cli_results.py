"""``latbench measure --profile`` and ``latbench results show`` as a user runs them: real processes, stdout and
stderr apart, one-line errors."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.models import FAST_CLI

LATBENCH = [sys.executable, "-c", "from latbench.cli import main; main()"]


def run(args: list[str], cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LATBENCH_CACHE_DIR": str(cache), "COLUMNS": "120", "OMP_NUM_THREADS": "1"}
    return subprocess.run([*LATBENCH, *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.slow  # measures in a subprocess
def test_a_profiled_model_shows_its_figures_and_top_operator_types(tmp_path, conv_model, artifact_cache):
    out = tmp_path / "r.csv"
    measured = run(["measure", "--model", str(conv_model), *FAST_CLI, "--no-reference", "--profile",
                    "--profile-runs", "3", "--out", str(out)], artifact_cache)  # fmt: skip
    assert measured.returncode == 0, measured.stderr
    shown = run(["results", "show", str(out), "--top", "2"], artifact_cache)
    assert shown.returncode == 0, shown.stderr
    assert "conv.onnx  onnxruntime/cpu: latency " in shown.stdout and "peak memory" in shown.stdout
    assert "top operator types (3 profiled runs" in shown.stdout and "Conv" in shown.stdout
    assert shown.stderr.strip() == "1 result(s), 1 with a profile"
    as_json = run(["results", "show", str(out), "--json", "--arch", "conv.onnx"], artifact_cache)
    [view] = json.loads(as_json.stdout)
    assert view["arch"] == "conv.onnx" and view["load_ms"] > 0 and view["peak_rss_mb"] > 0
    assert view["op_types"][0]["op"] == "Conv" and 0 < view["op_types"][0]["share"] <= 1

    # a result whose device recorded no load, first-run or memory figure (a remote device's tools) says so
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row.update(load_ms="", first_run_ms="", peak_rss_mb="", profile="")
    remote = tmp_path / "remote.csv"
    with remote.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    shown = run(["results", "show", str(remote)], artifact_cache)
    assert shown.returncode == 0, shown.stderr
    assert "load not recorded, first run not recorded, peak memory not recorded" in shown.stdout, shown.stdout


@pytest.mark.slow  # starts latbench in subprocesses
def test_unprofilable_runtimes_and_unknown_results_are_one_line_errors(tmp_path, conv_model, artifact_cache):
    refused = run(["measure", "--model", str(conv_model), "--runtime", "tflite", "--profile",
                   "--out", str(tmp_path / "r.csv")], artifact_cache)  # fmt: skip
    assert refused.returncode == 1 and refused.stdout == ""
    assert "profiling not supported by runtime tflite" in refused.stderr and "Traceback" not in refused.stderr
    missing = run(["results", "show", str(tmp_path / "none.csv")], artifact_cache)
    assert missing.returncode == 1 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
