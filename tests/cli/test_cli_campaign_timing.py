"""``campaign create`` times each model as ``measure`` would: the same timing options, sent to every agent with
each job, and contradictions refused before anything is created."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.adaptive import lease
from tests.support.processes import LATBENCH, env
from tests.support.served import ARCHS, Harness

TIMING = {
    "--min-runs": ("min_runs", 7),
    "--min-time": ("min_time_s", 0.25),
    "--max-time": ("max_time_s", 2.5),
    "--warmup-runs": ("warmup_runs", 3),
    "--warmup-time": ("warmup_time_s", 0.125),
    "--cv-threshold": ("cv_threshold", 0.35),
    "--drift-tolerance": ("drift_tolerance", 0.4),
    "--attempts": ("max_attempts", 2),
}


@pytest.mark.slow
def test_every_timing_option_and_classes_reach_the_agents_jobs(served: Harness):
    agent = served.agent("timing-agent")
    options = [str(part) for flag, (_, value) in TIMING.items() for part in (flag, value)]
    created = served.run_cli("campaign", "create", "--space", "nb201", "--arch", ARCHS[0], "--runtime", "onnxruntime",
                  "--classes", "7", "--profile", "--profile-runs", "4", *options)  # fmt: skip
    assert created.returncode == 0, created.stderr
    campaign = created.stdout.strip()
    served.wait_built(campaign)
    [job] = lease(agent)
    assert job["campaign_id"] == campaign and job["classes"] == 7
    assert {field: job["settings"][field] for field, _ in TIMING.values()} == dict(TIMING.values())
    assert job["settings"]["profile_runs"] == 4


@pytest.mark.slow
def test_contradicting_timing_options_are_usage_errors_and_create_nothing(served: Harness, tmp_path: Path):
    create = ("campaign", "create", "--space", "nb201", "--arch", ARCHS[0], "--runtime", "onnxruntime")
    contradiction = served.run_cli(*create, "--min-time", "40", "--max-time", "30")
    assert contradiction.returncode == 2, contradiction.stderr
    assert "--min-time 40 is above --max-time 30" in " ".join(contradiction.stderr.split())
    model = tmp_path / "m.onnx"
    model.write_bytes(b"")
    classes = served.run_cli("campaign", "create", "--models", str(model), "--runtime", "onnxruntime", "--classes", "5")
    assert classes.returncode == 2 and "--input" in classes.stderr
    assert json.loads(served.run_cli("campaign", "list", "--json").stdout) == []


def test_measure_refuses_contradicting_timing_options_before_measuring(tmp_path: Path):
    result = subprocess.run([*LATBENCH, "measure", "--space", "nb201", "-n", "1", "--out", str(tmp_path / "r.csv"),
                             "--min-time", "5", "--max-time", "1"], capture_output=True, text=True, timeout=120,
                            env=env())  # fmt: skip
    assert result.returncode == 2 and "--min-time 5 is above --max-time 1" in " ".join(result.stderr.split())
    assert not (tmp_path / "r.csv").exists()
