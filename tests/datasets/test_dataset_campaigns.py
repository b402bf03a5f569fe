"""One dataset from several campaigns: ``latbench dataset build --campaign A --campaign B`` against a real
collector whose campaigns a real agent finished."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import numpy as np
import pytest

from latbench import datasets
from tests.datasets.dataset_helpers import snapshot
from tests.support.ports import free_port
from tests.support.processes import LATBENCH, Agent, Collector, env, totals, wait_for

FAST = ["--min-runs", "10", "--min-time", "0.05", "--warmup-time", "0.02", "--attempts", "1"]
"""Short timings, measured once however unstable: on a busy machine re-measuring tripled each job's time, and
these tests are about the fleet, not the stability checks (tests/agents/test_measure.py)."""


@pytest.fixture
def collector(db_url, tmp_path, artifact_cache):
    c = Collector(db_url, tmp_path / "collector", free_port(), lease_ttl_s=10, artifacts=artifact_cache).start()
    yield c
    c.stop()


def build(collector: Collector, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LATBENCH, "dataset", "build", *args, "--collector", collector.url],
        capture_output=True,
        text=True,
        env=env(),
        timeout=120,
    )


def exported(collector: Collector, campaign: str, path: Path) -> list[dict[str, str]]:
    collector.cli("results", "export", "--campaign", campaign, "--out", str(path))
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_campaigns_of_one_device_pool_into_one_dataset(home, collector, tmp_path):
    """Seeds 21 (two cells) and 21 (three cells) share one cell: the union has four, the shared one the median."""
    token = collector.cli("token", "create", "--name", "ds")
    create = ["campaign", "create", "--space", "nb201", "--runtime", "onnxruntime", "--seed", "21", *FAST]
    pilot = collector.cli(*create, "--samples", "2", "--name", "pilot")
    full = collector.cli(*create, "--samples", "3", "--name", "full")
    stricter = collector.cli(*create, "--samples", "2", "--name", "stricter", "--min-runs", "12")
    agent = Agent(collector, token, "bench-1", tmp_path / "agent", "--max-jobs", "7")
    try:
        wait_for(
            lambda: all(totals(collector.status(c))["done"] >= n for c, n in ((pilot, 2), (full, 3), (stricter, 2))),
            300,
            "7 results",
        )
    finally:
        assert agent.stop() == 0, agent.log.read_text()[-2000:]
    rows = exported(collector, pilot, tmp_path / "pilot.csv") + exported(collector, full, tmp_path / "full.csv")

    done = build(collector, "--campaign", pilot, "--campaign", full, "--include-unstable", "--name", "pooled")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "pooled" and f"campaigns {pilot}, {full}" in done.stderr
    assert "1 architecture(s) measured more than once, each the median of its results" in done.stderr
    ds = datasets.load("pooled")
    device = rows[0]["device"]
    assert ds.device_names == [device] and set(ds.archs) == {r["arch"] for r in rows} and len(ds.archs) == 4
    by_arch: dict[str, list[float]] = {}
    for row in rows:
        by_arch.setdefault(row["arch"], []).append(float(row["latency_ms"]))
    assert [len(v) for v in by_arch.values()].count(2) == 1
    for arch, values in by_arch.items():
        assert ds.vector(device)[ds.archs.index(arch)] == pytest.approx(float(np.median(values)))
    assert ds.device(device).quality["results"] == 5 and ds.device(device).quality["repeated"] == 1
    parts = ds.provenance["campaigns"]
    assert [(p["campaign"], p["campaign_name"], p["results"]) for p in parts] == [
        (pilot, "pilot", 2),
        (full, "full", 3),
    ]

    before = snapshot(home)
    mixed = build(collector, "--campaign", pilot, "--campaign", stricter, "--include-unstable")
    assert mixed.returncode == 1 and mixed.stderr.count("\n") <= 2, mixed.stderr
    assert f"campaigns {pilot}, {stricter} measured device {device!r} with different setups" in mixed.stderr
    assert "cfg_min_runs: 10 (2 results) vs 12 (2 results)" in mixed.stderr
    other_space = collector.cli("campaign", "create", "--space", "fbnet", "--samples", "1", "--runtime", "onnxruntime")
    spaces = build(collector, "--campaign", pilot, "--campaign", other_space)
    assert spaces.returncode == 1
    assert f"campaigns of different search spaces: {pilot} (nb201), {other_space} (fbnet)" in spaces.stderr
    assert snapshot(home) == before
