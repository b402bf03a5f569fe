"""A campaign whose results all come back unstable: the operator is told, and a dataset is not built on them
unless asked. The results are really unstable: a CV threshold no timing on any machine meets."""

from __future__ import annotations

import subprocess

import pytest

from latbench.client import CollectorClient
from latbench.protocol import CampaignCreate, MeasurementSettings
from tests.support.ports import free_port
from tests.support.processes import ADMIN_TOKEN, LATBENCH, Agent, Collector, env, totals, wait_for

pytestmark = pytest.mark.slow  # real collector and agent processes


@pytest.fixture
def collector(db_url, tmp_path, artifact_cache):
    c = Collector(db_url, tmp_path / "collector", free_port(), lease_ttl_s=10, artifacts=artifact_cache).start()
    yield c
    c.stop()


def test_campaign_status_and_dataset_build_say_how_many_results_are_unstable(collector, tmp_path, monkeypatch):
    monkeypatch.setenv("LATBENCH_HOME", str(tmp_path / "home"))  # the dataset registry of the CLI runs below
    settings = MeasurementSettings(min_runs=10, min_time_s=0.05, warmup_time_s=0.02, cv_threshold=1e-4, max_attempts=1)
    spec = CampaignCreate(space="nb201", samples=2, seed=4, runtime="onnxruntime", settings=settings, name="shaky")
    with CollectorClient(collector.url, ADMIN_TOKEN) as client:
        campaign = client.create_campaign(spec)
    token = collector.cli("token", "create", "--name", "shaky")
    agent = Agent(collector, token, "bench-1", tmp_path / "agent")
    try:
        wait_for(lambda: totals(collector.status(campaign))["done"] == 2, 180, "2 results")
    finally:
        assert agent.stop() == 0, agent.log.read_text()[-2000:]

    def latbench(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [*LATBENCH, *args, "--collector", collector.url]
        return subprocess.run(cmd, capture_output=True, text=True, env={**env(), "COLUMNS": "200"}, timeout=120)

    status = latbench("campaign", "status", campaign)
    assert status.returncode == 0, status.stderr
    assert "2 of 2 results are unstable (" in status.stderr and "high variation between runs" in status.stderr
    assert "Re-measure them when the device is idle." in status.stderr and "use --wait-idle" not in status.stderr

    refused = latbench("dataset", "build", "--campaign", campaign)
    assert refused.returncode == 1 and "2 of 2 results are unstable" in refused.stderr
    assert "use --wait-idle" not in refused.stderr
    assert "--include-unstable" in refused.stderr
    built = latbench("dataset", "build", "--campaign", campaign, "--include-unstable")
    assert built.returncode == 0 and built.stdout.strip() == f"campaign-{campaign}"
    assert "2 of 2 results are unstable" in built.stderr
