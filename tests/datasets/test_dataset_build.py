"""Building datasets from real measurements: a ``latbench measure`` file and a campaign run by a real agent."""

from __future__ import annotations

import csv
import os
import subprocess

import numpy as np
import pytest

from latbench import datasets
from latbench.datasets.cards import markdown
from latbench.resultfile import read_results, write_results
from tests.datasets.dataset_helpers import cli, snapshot
from tests.support.ports import free_port
from tests.support.processes import LATBENCH, Agent, Collector, env, totals, wait_for

FAST = ["--min-runs", "10", "--min-time", "0.05", "--warmup-time", "0.02", "--attempts", "1"]
"""Short timings, measured once however unstable: on a busy machine re-measuring tripled each job's time, and
these tests are about the fleet, not the stability checks (tests/agents/test_measure.py)."""


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


@pytest.mark.slow
def test_build_from_a_results_file_keeps_setup_environment_and_quality(home, measured):
    every = ["--include-unstable"]  # this machine may be busy: this test is about what a build keeps
    result = cli("dataset", "build", "--from-results", str(measured), "--name", "desk", "--device", "my-desk", *every)
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


@pytest.mark.slow
def test_repeats_become_their_median_and_mixed_setups_are_refused(home, measured, tmp_path):
    rows = read_results(measured)
    again = dict(rows[0], latency_ms=rows[0]["latency_ms"] * 2)
    ds = datasets.build_from_rows([*rows, again], name="rep", provenance={}, source="test", include_unstable=True)
    (device,) = ds.device_names
    assert ds.vector(device)[ds.archs.index(rows[0]["arch"])] == rows[0]["latency_ms"] * 1.5
    assert ds.device(device).quality["repeated"] == 1
    assert ds.device(device).quality["max_repeat_spread"] == pytest.approx(1 / 1.5, abs=1e-6)

    mixed = tmp_path / "mixed.csv"
    write_results(mixed, [*rows, dict(rows[1], threads=2, cfg_min_runs=50)])
    before = snapshot(home)
    refused = cli("dataset", "build", "--from-results", str(mixed), "--include-unstable")
    assert refused.returncode == 1 and "different setups" in refused.stderr
    assert "threads: 1 (3 results) vs 2 (1 result)" in refused.stderr and "cfg_min_runs" in refused.stderr
    assert snapshot(home) == before
    missing = cli("dataset", "build", "--from-results", str(tmp_path / "none.csv"))
    assert missing.returncode == 1 and "does not exist" in missing.stderr


@pytest.mark.slow
def test_unstable_results_are_left_out_by_default_and_said(home, measured, tmp_path):
    """The stability checks' verdict decides what a build uses: stable results, unless told otherwise."""
    rows = read_results(measured)
    marked = [dict(rows[0], stable=True, flags=""), *(dict(r, stable=False, flags="high_cv") for r in rows[1:])]
    path = tmp_path / "marked.csv"
    write_results(path, marked)
    built = cli("dataset", "build", "--from-results", str(path), "--name", "stable-only")
    assert built.returncode == 0, built.stderr
    assert "2 of 3 results are unstable (high variation between runs)" in built.stderr
    assert "left out 2 unstable results (use --include-unstable to keep them)" in built.stderr
    ds = datasets.load("stable-only")
    assert list(ds.archs) == [rows[0]["arch"]]
    quality = ds.devices[0].quality
    assert quality["unstable"] == 2 and quality["unstable_left_out"] == 2 and "2 of 3" in quality["stability"]
    shown = cli("dataset", "show", "stable-only")
    assert "2 of 3 results are unstable" in " ".join(shown.stdout.split())
    card = markdown(datasets.describe(ds))
    assert "## Unstable results" in card and "2 of 3 results are unstable" in card

    everything = cli("dataset", "build", "--from-results", str(path), "--name", "all", "--include-unstable")
    assert everything.returncode == 0 and "left out" not in everything.stderr
    assert len(datasets.load("all").archs) == 3 and datasets.load("all").devices[0].quality["unstable_left_out"] == 0

    write_results(path, [dict(r, stable=False, flags="high_cv") for r in rows])
    before = snapshot(home)
    refused = cli("dataset", "build", "--from-results", str(path), "--name", "none")
    assert refused.returncode == 1 and "3 of 3 results are unstable" in refused.stderr
    assert "--include-unstable" in refused.stderr and snapshot(home) == before


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
    built = collector.cli("dataset", "build", "--campaign", campaign, "--include-unstable")
    assert built == f"campaign-{campaign}"
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
