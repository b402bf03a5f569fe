"""Building datasets from real measurements: a ``latbench measure`` file and a campaign run by a real agent."""

from __future__ import annotations

import csv
import os
import subprocess

import numpy as np
import pytest

from latbench import datasets
from latbench.resultfile import read_results, write_results
from tests.datasets.dataset_helpers import cli, snapshot
from tests.support.ports import free_port
from tests.support.processes import LATBENCH, Agent, Collector, env, totals, wait_for

FAST = ["--min-runs", "10", "--min-time", "0.05", "--warmup-time", "0.02"]


@pytest.fixture(scope="module")
def measured(tmp_path_factory, artifact_cache):
    """Three NB201 cells measured on this machine by ``latbench measure``, as a user would."""
    out = tmp_path_factory.mktemp("measured") / "results.csv"
    env = {**os.environ, "LATBENCH_CACHE_DIR": str(artifact_cache)}
    subprocess.run(
        [
            *LATBENCH,
            "measure",
            "--space",
            "nb201",
            "--samples",
            "3",
            "--seed",
            "5",
            *FAST,
            "--warmup-runs",
            "2",
            "--no-reference",
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
        env=env,
        timeout=300,
    )
    return out


def test_build_from_a_results_file_keeps_setup_environment_and_quality(home, measured):
    result = cli("dataset", "build", "--from-results", str(measured), "--name", "desk", "--device", "my-desk")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "desk"
    rows = read_results(measured)
    ds = datasets.load("desk")
    assert ds.device_names == ["my-desk"] and sorted(ds.archs) == sorted(r["arch"] for r in rows)
    for row in rows:
        assert ds.vector("my-desk")[ds.archs.index(row["arch"])] == row["latency_ms"]
    meta = ds.device("my-desk")
    assert (meta.runtime, meta.provider, meta.batch, meta.threads, meta.resolution) == ("onnxruntime", "cpu", 1, 1, 32)
    assert meta.runtime_version == rows[0]["runtime_version"] and meta.settings["min_runs"] == 10
    assert meta.environment["cpu_model"] == rows[0]["env_cpu_model"]
    assert meta.quality["results"] == 3 and meta.quality["repeated"] == 0
    assert meta.quality["median_cv"] == pytest.approx(float(np.median([r["cv"] for r in rows])), abs=1e-6)
    assert ds.provenance["kind"] == "build" and ds.provenance["results_file"] == "results.csv"


def test_repeats_become_their_median_and_mixed_setups_are_refused(home, measured, tmp_path):
    rows = read_results(measured)
    again = dict(rows[0], latency_ms=rows[0]["latency_ms"] * 2)
    ds = datasets.build_from_rows([*rows, again], name="rep", provenance={}, source="test")
    (device,) = ds.device_names
    assert ds.vector(device)[ds.archs.index(rows[0]["arch"])] == rows[0]["latency_ms"] * 1.5
    assert ds.device(device).quality["repeated"] == 1
    assert ds.device(device).quality["max_repeat_spread"] == pytest.approx(1 / 1.5, abs=1e-6)

    mixed = tmp_path / "mixed.csv"
    write_results(mixed, [*rows, dict(rows[1], threads=2, cfg_min_runs=50)])
    before = snapshot(home)
    refused = cli("dataset", "build", "--from-results", str(mixed))
    assert refused.returncode == 1 and "different setups" in refused.stderr
    assert "threads: 1 (3 results) vs 2 (1 results)" in refused.stderr and "cfg_min_runs" in refused.stderr
    assert snapshot(home) == before
    missing = cli("dataset", "build", "--from-results", str(tmp_path / "none.csv"))
    assert missing.returncode == 1 and "does not exist" in missing.stderr


@pytest.fixture
def collector(db_url, tmp_path, artifact_cache):
    c = Collector(db_url, tmp_path / "collector", free_port(), lease_ttl_s=10, artifacts=artifact_cache).start()
    yield c
    c.stop()


@pytest.mark.slow
def test_build_from_a_campaign_a_real_agent_finished(home, collector, tmp_path):
    token = collector.cli("token", "create", "--name", "ds")
    campaign = collector.cli(
        "campaign",
        "create",
        "--space",
        "nb201",
        "--samples",
        "2",
        "--seed",
        "21",
        "--runtime",
        "onnxruntime",
        "--name",
        "tiny",
        *FAST,
    )
    agent = Agent(collector, token, "bench-1", tmp_path / "agent", "--max-jobs", "2")
    try:
        wait_for(lambda: totals(collector.status(campaign))["done"] == 2, 180, "2 results")
    finally:
        assert agent.stop() == 0, agent.log.read_text()[-2000:]
    assert collector.cli("dataset", "build", "--campaign", campaign) == f"campaign-{campaign}"
    collector.cli("results", "export", "--campaign", campaign, "--out", str(tmp_path / "export.csv"))
    with (tmp_path / "export.csv").open(newline="") as f:
        exported = list(csv.DictReader(f))
    ds = datasets.load(f"campaign-{campaign}")
    assert ds.device_names == [exported[0]["device"]] and len(ds.archs) == 2
    for row in exported:
        assert ds.vector(row["device"])[ds.archs.index(row["arch"])] == float(row["latency_ms"])
    meta = ds.device(exported[0]["device"])
    assert meta.environment["agents"] == ["bench-1"] and meta.settings["min_time_s"] == 0.05
    assert ds.provenance["campaign"] == campaign and ds.provenance["campaign_name"] == "tiny"
    unknown = subprocess.run(
        [*LATBENCH, "dataset", "build", "--campaign", "nope", "--collector", collector.url],
        capture_output=True,
        text=True,
        env=env(),
        timeout=120,
    )
    assert unknown.returncode == 1 and "404" in unknown.stderr and not (home / "datasets" / "campaign-nope").exists()
