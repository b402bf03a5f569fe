"""``latbench quickstart`` end to end: real collector and agent processes, a real transfer, a resumable run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from latbench import datasets
from latbench.predictor import Predictor, setups
from latbench.predictor.out_of_fold import recorded

pytestmark = pytest.mark.slow  # real collector and agent processes, a transfer

FAST = ["--samples", "5", "--holdout", "6", "--min-time", "0.05", "--min-runs", "5", "--warmup-time", "0.02",
        "--no-wait-idle", "--include-unstable"]  # fmt: skip
"""Short timings; these tests are about the steps, and the machine running them is rarely idle."""


def run(workspace: Path, home: Path, *extra: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "latbench", "quickstart", "--dir", str(workspace), *FAST, *extra]
    env = {**os.environ, "LATBENCH_HOME": str(home), "COLUMNS": "160"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, subprocess.CompletedProcess[str]]:
    root = tmp_path_factory.mktemp("quickstart")
    workspace, home = root / "ws", root / "home"
    return workspace, home, run(workspace, home, "--json")


def test_quickstart_measures_transfers_and_reports(finished, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace, home, result = finished
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["outputs"]["report"] == str(workspace / "report.html")
    for row in ("transferred predictor", "FLOPs", "best public device"):
        assert row in result.stderr

    evaluation = summary["evaluation"]
    assert evaluation["holdout"] == 6
    assert -1.0 <= evaluation["predictor_srcc"] <= 1.0
    assert evaluation["best_public_device"] in datasets.load("help-nb201").device_names
    assert set(summary["timings_s"]) == {"plan", "measure", "dataset", "transfer", "evaluate", "report"}

    monkeypatch.setenv("LATBENCH_HOME", str(home))
    ds = datasets.load("quickstart-nb201")
    assert len(ds.archs) == 11 and len(ds.device_names) == 1
    state = json.loads((workspace / "quickstart.json").read_text())
    assert sorted(ds.archs) == sorted(state["steps"]["plan"]["transfer"] + state["steps"]["plan"]["holdout"])
    assert not set(state["steps"]["plan"]["transfer"]) & set(state["steps"]["plan"]["holdout"])

    model = Predictor.load(workspace / "model.pt")
    assert model.target == ds.device_names[0]
    predicted = model.predict(list(ds.archs))
    assert predicted.shape == (11,) and np.all(predicted > 0)
    out_of_fold = recorded(model)  # what `latbench search --confirm` starts its margin from
    assert out_of_fold is not None and len(out_of_fold[0]) == len(state["steps"]["plan"]["transfer"]) == 5
    assert sorted(out_of_fold[1]) == sorted(
        ds.vector(model.target)[[ds.archs.index(a) for a in state["steps"]["plan"]["transfer"]]]
    )
    setup = setups.recorded(model)  # how its samples were measured, for `latbench search --verify`
    assert setup is not None and (setup.runtime, setup.batch, setup.precision) == ("onnxruntime", 1, "fp32")
    assert setups.is_this_machine(model.info) is True  # so `latbench search` measures its finalists here, unwarned

    report = (workspace / "report.html").read_text()
    assert report.count("data:image/png;base64,") == 3
    assert "http://" not in report and "<script" not in report


def test_a_finished_quickstart_reruns_without_measuring_again(finished) -> None:
    workspace, home, _ = finished
    before = json.loads((workspace / "quickstart.json").read_text())
    again = run(workspace, home)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == str(workspace / "report.html")
    after = json.loads((workspace / "quickstart.json").read_text())
    assert after["campaign_id"] == before["campaign_id"]
    assert after["steps"]["measure"] == before["steps"]["measure"]
    assert after["steps"]["transfer"] == before["steps"]["transfer"]


def test_other_settings_in_the_same_workspace_are_refused(finished) -> None:
    workspace, home, _ = finished
    other = run(workspace, home, "--seed", "3")
    assert other.returncode == 1
    assert "other settings" in other.stderr and "seed: 0 -> 3" in other.stderr


def test_ctrl_c_mid_measurement_resumes_and_measures_each_arch_once(tmp_path: Path) -> None:
    workspace, home = tmp_path / "ws", tmp_path / "home"
    cmd = [sys.executable, "-m", "latbench", "quickstart", "--dir", str(workspace), *FAST]
    env = {**os.environ, "LATBENCH_HOME": str(home)}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    state_file = workspace / "quickstart.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if state_file.exists() and "campaign_id" in json.loads(state_file.read_text()):
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the quickstart never created its campaign")
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "run the same command to resume" in stderr
    state = json.loads(state_file.read_text())
    assert "measure" not in state["steps"]

    resumed = run(workspace, home)
    assert resumed.returncode == 0, resumed.stderr
    final = json.loads(state_file.read_text())
    assert final["campaign_id"] == state["campaign_id"]
    per_job = _results_per_job(workspace, final["campaign_id"])
    assert len(per_job) == 11 and set(per_job.values()) == {1}


def _results_per_job(workspace: Path, campaign_id: str) -> dict[str, int]:
    """Stored measurements per job of the campaign, read from the workspace's collector store."""
    import sqlite3

    db = sqlite3.connect(workspace / "collector" / "collector.sqlite")
    try:
        rows = db.execute(
            "select r.job_id, count(*) from results r join jobs j on r.job_id = j.id "
            "where j.campaign_id = ? and r.error is null group by r.job_id",
            (campaign_id,),
        ).fetchall()
    finally:
        db.close()
    return dict(rows)


def test_unstable_results_are_said_in_the_summary_and_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CV threshold no timing meets makes every result really unstable: kept on request, and said everywhere."""
    from latbench.agents.measure import TimingSettings
    from latbench.quickstart import quickstart

    monkeypatch.setenv("LATBENCH_HOME", str(tmp_path / "home"))
    settings = TimingSettings(min_time_s=0.05, min_runs=5, warmup_time_s=0.02, cv_threshold=1e-4, max_attempts=1)
    result = quickstart(tmp_path / "ws", samples=5, holdout=6, settings=settings, wait_idle=False,
                        include_unstable=True)  # fmt: skip
    assert result.stability is not None and result.stability.startswith("11 of 11 results are unstable")
    assert result.left_out == 0 and result.as_dict()["stability"] == result.stability
    report = (tmp_path / "ws" / "report.html").read_text()
    assert "class='warning'" in report and report.index("11 of 11 results") < report.index("Rank correlation")


def test_a_cancelled_campaign_ends_the_quickstart_with_a_clear_error(tmp_path: Path) -> None:
    """An admin who cancels the quickstart's campaign (its collector is reachable while it measures) ends the run
    at once, saying so, where it used to wait forever for a campaign that would never finish."""
    import httpx

    workspace, home = tmp_path / "ws", tmp_path / "home"
    cmd = [sys.executable, "-m", "latbench", "quickstart", "--dir", str(workspace), *FAST]
    env = {**os.environ, "LATBENCH_HOME": str(home), "COLUMNS": "400"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    state_file = workspace / "quickstart.json"
    deadline = time.monotonic() + 300
    while not (state_file.exists() and "campaign_id" in (state := json.loads(state_file.read_text()))):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail(f"the quickstart never created its campaign: {proc.communicate()[1][-2000:]}")
        time.sleep(0.2)
    token = (workspace / "admin-token").read_text().strip()
    cancelled = httpx.post(f"http://127.0.0.1:{state['port']}/v1/admin/campaigns/{state['campaign_id']}/cancel",
                           headers={"Authorization": f"Bearer {token}"}, timeout=30)  # fmt: skip
    assert cancelled.status_code == 200, cancelled.text
    try:
        _, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # the quickstart stops its collector and agent on the way out
        proc.communicate(timeout=60)
        pytest.fail("the quickstart went on waiting for its cancelled campaign")
    assert proc.returncode == 1, stderr
    assert f"the measurement campaign was cancelled; to start again, remove {workspace}" in " ".join(stderr.split())
    assert "Traceback" not in stderr
