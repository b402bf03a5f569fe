"""``latbench predictor`` and the commands that take a ``--model``, as a user runs them: what goes to stdout."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support.processes import LATBENCH, env


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LATBENCH, *args], capture_output=True, text=True, env=env(), timeout=300)


@pytest.mark.slow  # evaluates a task
def test_eval_with_out_prints_the_path_alone_and_its_table_on_stderr(tmp_path):
    written = tmp_path / "nd.json"
    done = run("predictor", "eval", "--task", "ND", "--samples", "3", "--trials", "1", "--method", "flops",
               "--out", str(written))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{written}\n"
    assert "task ND" in done.stderr and "mean" in done.stderr and "paper (20 samples)" in done.stderr
    assert json.loads(written.read_text())["task"] == "ND"


@pytest.mark.parametrize(
    "args",
    [
        ["predict", "-a", "x"],
        ["predictor", "transfer", "-d", "pixel3", "--dataset", "help-nb201", "-o", "t.pt"],
        ["search", "-s", "nb201", "--max-latency-ms", "1", "--verify", "none"],
    ],
)
def test_an_unknown_shipped_model_is_named_with_the_shipped_ones(tmp_path, args):
    done = subprocess.run([*LATBENCH, *args, "--model", "shipped:foo"], capture_output=True, text=True, env=env(),
                          cwd=tmp_path, timeout=120)  # fmt: skip
    assert done.returncode == 1
    expected = "there is no shipped predictor 'foo'; choose one of: shipped:nb201, shipped:ofa-mbv3"
    assert done.stderr.strip() == f"error: {expected}"
