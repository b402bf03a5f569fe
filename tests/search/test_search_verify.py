"""``latbench search --verify`` measures at the setup the predictor's samples were measured at, says what it
assumes or overrides, warns when predictions and measurements disagree wildly; on a collector it refuses a device
no agent serves, reports progress while it waits, and cancels its campaign when interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from latbench import datasets, predictor
from latbench.predictor import setups
from latbench.predictor.setups import MeasurementSetup
from latbench.search import agreement_warning
from latbench.search.measuring import verification_setup
from tests.support.processes import LATBENCH
from tests.support.served import ADMIN_TOKEN, Harness, measurement


def latbench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LATBENCH, *args], capture_output=True, text=True, timeout=600, env=_env())


def _env() -> dict[str, str]:
    return {**os.environ, "LATBENCH_ADMIN_TOKEN": ADMIN_TOKEN, "COLUMNS": "200"}


# --- the setup -------------------------------------------------------------------------------------------------
def test_the_models_recorded_setup_is_what_verification_measures_at():
    recorded = MeasurementSetup(runtime="onnxruntime", provider="cpu", precision="fp32", batch=8, threads=2,
                                resolution=32, classes=10)  # fmt: skip
    setup, warnings = verification_setup(recorded, MeasurementSetup(), "t8.pt")
    assert setup == recorded and warnings == []


def test_a_model_without_a_recorded_setup_is_verified_at_the_defaults_with_a_warning_naming_them():
    setup, [warning] = verification_setup(None, MeasurementSetup(), "old.pt")
    assert setup == MeasurementSetup("onnxruntime", "cpu", "fp32", 1, 1, None, None)
    assert "old.pt does not record how its samples were measured" in warning
    assert "batch 1" in warning and "runtime onnxruntime" in warning and "--batch" in warning


def test_fields_a_model_does_not_record_are_named_as_assumed():
    setup, [warning] = verification_setup(MeasurementSetup(batch=32), MeasurementSetup(), "gpu.pt")
    assert setup.batch == 32 and setup.runtime == "onnxruntime" and setup.threads == 1
    assert "gpu.pt does not record its samples' runtime, provider, precision, threads" in warning
    assert "batch" not in warning.split("assuming")[0]


def test_an_override_that_differs_from_the_models_setup_is_warned_about():
    recorded = MeasurementSetup("onnxruntime", "cpu", "fp32", 8, 1, 32, 10)
    setup, [warning] = verification_setup(recorded, MeasurementSetup(batch=1), "t8.pt")
    assert setup.batch == 1
    assert "--batch 1 differs from the batch 8 that t8.pt's samples were measured at" in warning
    same, none = verification_setup(recorded, MeasurementSetup(batch=8), "t8.pt")
    assert same.batch == 8 and none == []


def test_a_huge_median_error_is_warned_about():
    assert agreement_warning({"within_limit": 1.0, "median_rel_error": 0.2}) is None
    warning = agreement_warning({"within_limit": 1.0, "median_rel_error": 8.82})
    assert warning is not None and "882%" in warning and "within the limit" in warning


def test_a_transfer_again_does_not_inherit_the_earlier_targets_setup():
    ds = datasets.load("help-nb201")
    archs = predictor.suggest("nb201", 6, "encoding", 0)
    where = {a: i for i, a in enumerate(ds.archs)}
    first = predictor.transfer(predictor.load_pretrained("nb201"), "raspi4", archs,
                               ds.vector("raspi4")[[where[a] for a in archs]])  # fmt: skip
    setups.record(first, MeasurementSetup(batch=8))
    again = predictor.transfer(first, "pixel3", archs, ds.vector("pixel3")[[where[a] for a in archs]])
    assert setups.recorded(first) == MeasurementSetup(batch=8) and setups.recorded(again) is None


# --- transfer records it, search measures at it ----------------------------------------------------------------
@pytest.fixture(scope="module")
def batch2(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """A model transferred (``latbench predictor transfer --results``) from 6 architectures measured here at
    batch 2, and the median of those measurements."""
    where = tmp_path_factory.mktemp("batch2")
    results = where / "b2.csv"
    measured = latbench("measure", "--space", "nb201", "-n", "6", "--seed", "3", "--batch", "2", "--min-runs", "3",
                        "--min-time", "0", "--warmup-runs", "1", "--warmup-time", "0", "--no-reference",
                        "--cache-dir", str(where / "cache"), "--out", str(results))  # fmt: skip
    assert measured.returncode == 0, measured.stderr
    model = where / "b2.pt"
    made = latbench("predictor", "transfer", "--model", "shipped:nb201", "--device", "here-b2", "--results",
                    str(results), "--include-unstable", "--folds", "0", "--out", str(model))  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "the samples were measured with runtime onnxruntime" in made.stderr
    ds = datasets.build_from_results(results, include_unstable=True)
    return model, float(np.nanmedian(ds.latency))


@pytest.mark.slow  # measures here
def test_transfer_from_results_records_their_setup(batch2: tuple[Path, float]):
    model, _ = batch2
    recorded = setups.recorded(predictor.Predictor.load(model))
    assert recorded is not None
    assert (recorded.batch, recorded.runtime, recorded.provider, recorded.threads) == (2, "onnxruntime", "cpu", 1)
    assert (recorded.resolution, recorded.classes, recorded.precision) == (32, 10, "fp32")


@pytest.mark.slow  # measures here
def test_search_verifies_locally_at_the_models_setup_and_warns_of_an_override(batch2: tuple[Path, float]):
    model, limit = batch2
    args = ("search", "--model", str(model), "--space", "nb201", "--max-latency-ms", f"{limit * 2}", "--budget",
            "50", "--finalists", "1", "--confirm", "0", "--level", "0", "--json")  # fmt: skip
    result = latbench(*args)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["setup"]["batch"] == 2
    assert not any("differs" in w or "does not record" in w for w in payload["warnings"])  # a busy machine may add one
    assert (
        "finalists are measured here with runtime onnxruntime, provider cpu, precision fp32, batch 2" in result.stderr
    )
    overridden = latbench(*args, "--batch", "1")
    assert overridden.returncode == 0, overridden.stderr
    payload = json.loads(overridden.stdout)
    assert payload["setup"]["batch"] == 1
    assert any("--batch 1 differs from the batch 2" in w for w in payload["warnings"])
    assert "--batch 1 differs from the batch 2" in " ".join(overridden.stderr.split())


@pytest.mark.slow  # measures here
def test_a_model_of_another_device_is_not_verified_here_unless_asked(tmp_path: Path):
    """Finalists measured on this machine say nothing of a phone's latencies: by default they are not measured
    (saying why, and how to measure them there); asked for, they are, with a warning."""
    model = tmp_path / "raspi4.pt"
    made = latbench("predictor", "transfer", "--model", "shipped:nb201", "--device", "raspi4", "--dataset",
                    "help-nb201", "--samples", "10", "--folds", "0", "--out", str(model))  # fmt: skip
    assert made.returncode == 0, made.stderr
    args = ("search", "--model", str(model), "--space", "nb201", "--max-latency-ms", "50", "--budget", "50",
            "--finalists", "1", "--confirm", "0", "--level", "0", "--json")  # fmt: skip
    elsewhere = f"{model}'s samples were measured on raspi4 of published dataset help-nb201, not on this machine"
    default = latbench(*args)
    assert default.returncode == 0, default.stderr
    assert elsewhere in " ".join(default.stderr.split()) and "so they are not measured" in default.stderr
    payload = json.loads(default.stdout)
    assert payload["verified"] in (None, []) and payload["agreement"] is None
    asked = latbench(*args, "--verify", "local")
    assert asked.returncode == 0, asked.stderr
    assert "would confirm nothing of raspi4's latencies" in " ".join(asked.stderr.split())
    assert [row["measured_ms"] > 0 for row in json.loads(asked.stdout)["verified"]] == [True]


# --- on a collector --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def batch8(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """A model of device ``vm-b8`` whose samples were measured at batch 8, and their median."""
    ds = datasets.load("help-nb201")
    archs = predictor.suggest("nb201", 8, "encoding", 0)
    where = {a: i for i, a in enumerate(ds.archs)}
    latency = ds.vector("raspi4")[[where[a] for a in archs]] * 1.3  # not a source device's own table
    model = predictor.transfer(predictor.load_pretrained("nb201"), "vm-b8", archs, latency)
    setups.record(model, MeasurementSetup("onnxruntime", "cpu", "fp32", 8, 1, 32, 10))
    path = model.save(tmp_path_factory.mktemp("b8") / "t8.pt")
    return path, float(np.median(latency))


def search_on(collector: Harness, model: Path, limit: float, *extra: str) -> list[str]:
    return [*LATBENCH, "search", "--model", str(model), "--space", "nb201", "--max-latency-ms", f"{limit}",
            "--budget", "50", "--finalists", "1", "--confirm", "0", "--level", "0", "--verify", "campaign",
            "--collector", collector.url, *extra]  # fmt: skip


@pytest.mark.slow  # builds artifacts at batch 8
def test_verify_campaign_measures_at_the_models_setup_and_reports_progress(served: Harness, batch8):
    model, limit = batch8
    agent = served.agent("vm-agent", device="vm-b8")
    seen: list[dict] = []
    stop = threading.Event()

    def measure() -> None:
        while not stop.is_set():
            jobs = agent.post("/leases", json={"max_jobs": 5}).json()["jobs"]
            seen.extend(jobs)
            if jobs:
                agent.post("/results", json={"results": [measurement(job, limit / 2) for job in jobs]})
            time.sleep(0.2)

    worker = threading.Thread(target=measure, daemon=True)
    worker.start()
    try:
        result = subprocess.run([*search_on(served, model, limit), "--json"], capture_output=True, text=True,
                                timeout=300, env=_env())  # fmt: skip
    finally:
        stop.set()
        worker.join(10)
    assert result.returncode == 0, result.stderr
    assert seen and all(job["batch"] == 8 and job["runtime"] == "onnxruntime" for job in seen)
    payload = json.loads(result.stdout)
    assert payload["setup"]["batch"] == 8 and payload["verified"][0]["measured_ms"] == pytest.approx(limit / 2)
    stderr = " ".join(result.stderr.split())
    assert "waiting for its agents (Ctrl-C cancels it)" in stderr and "1 of 1 measured" in stderr, stderr


@pytest.mark.slow
def test_verify_campaign_refuses_at_once_a_device_the_collector_does_not_know(served: Harness, batch8):
    model, limit = batch8
    served.agent("other-agent", device="desk")
    before = served.admin.get("/admin/campaigns").json()
    started = time.monotonic()
    result = subprocess.run(search_on(served, model, limit), capture_output=True, text=True, timeout=120, env=_env())
    assert result.returncode == 1 and time.monotonic() - started < 60
    stderr = " ".join(result.stderr.split())
    assert "has no device 'vm-b8' (it knows: desk)" in stderr
    assert "latbench devices" in stderr and "--device" in stderr and "Traceback" not in stderr
    assert served.admin.get("/admin/campaigns").json() == before == []


@pytest.mark.slow
def test_verify_campaign_refuses_a_device_whose_agents_were_not_seen_recently(served: Harness, batch8):
    model, limit = batch8
    served.agent("vm-agent", device="vm-b8")
    served.clock.advance(3600)
    result = subprocess.run(search_on(served, model, limit), capture_output=True, text=True, timeout=120, env=_env())
    assert result.returncode == 1
    stderr = " ".join(result.stderr.split())
    assert "no agent of device 'vm-b8' was seen recently" in stderr and "vm-agent" in stderr
    assert served.admin.get("/admin/campaigns").json() == []


@pytest.mark.slow
def test_interrupting_verify_campaign_cancels_its_campaign(served: Harness, batch8):
    model, limit = batch8
    served.agent("vm-agent", device="vm-b8")  # enrolled and seen, but it never asks for work
    search = subprocess.Popen(search_on(served, model, limit), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=_env())  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not served.admin.get("/admin/campaigns").json():
            assert time.monotonic() < deadline and search.poll() is None, "the search made no campaign"
            time.sleep(0.2)
        time.sleep(2)
        search.send_signal(signal.SIGINT)
        _, stderr = search.communicate(timeout=60)
    finally:
        search.kill()
    assert search.returncode == 130, stderr
    [campaign] = served.admin.get("/admin/campaigns").json()
    assert campaign["state"] == "cancelled" and campaign["batch"] == 8
    assert f"cancelled campaign {campaign['campaign_id']}" in " ".join(stderr.split())
