"""Management endpoints: health, OpenAPI, campaigns and their progress, devices, and the results export."""

from __future__ import annotations

import csv
import json

import numpy as np
import pyarrow.parquet
import pytest

from latbench.agents.environment import MachineState, machine_info
from latbench.agents.measure import Measurement, TimingSettings
from latbench.agents.runtimes.onnxruntime import OnnxRuntime
from latbench.agents.stats import LatencyStats
from latbench.local import _row
from latbench.local.record import run_settings
from latbench.resultfile import ResultsFile
from latbench.results_schema import EXPORT_COLUMNS, RESULT_COLUMNS
from tests.support.served import ARCHS, Harness, measurement


def measure_row() -> dict[str, object]:
    """A row as ``latbench measure`` writes it, from the function that builds it."""
    times = np.array([1_000_000, 1_100_000, 1_200_000])
    state = MachineState(0.1, 2000.0, "performance", 50.0, 4.0)
    m = Measurement(LatencyStats.from_ns(times), times, 10, 1.0, 1, True, state_before=state, state_after=state)
    identity = {"space": "nb201", "runtime": "onnxruntime", "provider": "cpu", "batch": 1, "threads": 1,
                "resolution": 32, "classes": 10, "opset": 17, "device_id": "0" * 16,
                **run_settings(TimingSettings(), OnnxRuntime(), True, None)}  # fmt: skip
    return _row(ARCHS[0], "nb201", "0" * 64, OnnxRuntime(), identity, machine_info(), TimingSettings(), m)


def measure_columns() -> list[str]:
    return list(measure_row())


@pytest.mark.slow
def test_health_needs_no_token_and_openapi_describes_the_api(collector: Harness):
    health = collector.client().get("/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    paths = collector.client().get(collector.url + "/openapi.json").json()["paths"]
    assert {"/v1/enroll", "/v1/heartbeat", "/v1/leases", "/v1/results", "/v1/admin/campaigns"} <= set(paths)
    for page in ("/docs", "/redoc"):  # they load third-party scripts into a page where admins paste tokens
        assert collector.client().get(collector.url + page).status_code == 404


@pytest.mark.slow
def test_a_campaign_builds_then_runs_and_reports_per_device_progress(collector: Harness):
    campaign = collector.campaign(ARCHS[:2], wait=False, name="smoke", devices=["rpi4"])
    first = collector.status(campaign)  # rpi4 not enrolled yet: online unknown
    assert first["name"] == "smoke" and first["samples"] == 2 and first["state"] in ("building", "running")
    assert first["devices"] == [{"device": "rpi4", "queued": 2, "leased": 0, "done": 0, "failed": 0, "total": 2,
                                 "rate_per_min": None, "eta_s": None, "failures": [], "online": None,
                                 "last_result_at": None, "leased_since": None}]  # fmt: skip
    collector.wait_built(campaign)
    status = collector.status(campaign)
    assert status["state"] == "running" and status["artifacts_ready"] == 2
    agent = collector.agent("a1", device="rpi4")
    agent.post("/leases", json={})
    [device] = collector.status(campaign)["devices"]
    assert (device["queued"], device["leased"]) == (1, 1)
    listed = collector.admin.get("/admin/campaigns").json()
    assert [c["campaign_id"] for c in listed] == [campaign]


@pytest.mark.slow  # builds artifacts the other tests do not share
def test_a_sampled_campaign_is_seeded(collector: Harness):
    from latbench.spaces import get_space

    campaign = collector.campaign(archs=None, samples=2, seed=7, sampler="connected", wait=False)
    agent = collector.agent("a1")
    collector.wait_built(campaign)
    jobs = agent.post("/leases", json={"max_jobs": 5}).json()["jobs"]
    assert [j["arch"] for j in jobs] == get_space("nb201").sample(2, 7, connected_only=True)


def test_archs_are_canonicalised_and_deduplicated(collector: Harness):
    spaced = f"  {ARCHS[0]} "
    campaign = collector.campaign([spaced, ARCHS[0], ARCHS[1]])
    assert collector.status(campaign)["samples"] == 2


def test_the_export_has_the_measure_columns_plus_device_and_agent(collector: Harness):
    campaign = collector.campaign(ARCHS[:2])
    agent = collector.agent("pi-1", device="rpi4")
    jobs = agent.post("/leases", json={"max_jobs": 2}).json()["jobs"]
    agent.post("/results", json={"results": [measurement(jobs[0], median_ms=2.0)]})
    response = collector.admin.get(f"/admin/campaigns/{campaign}/results")
    assert response.status_code == 200 and response.headers["content-type"] == "application/x-ndjson"
    [row] = [json.loads(line) for line in response.text.splitlines()]
    assert list(row) == [*measure_columns(), "device", "agent", "result_id"]
    assert row["arch"] == ARCHS[0] and row["latency_ms"] == 2.0 and row["times_ms"] == [1.8, 2.0, 2.4]
    assert (row["device"], row["agent"], row["env_hostname"], row["env_governor"]) == ("rpi4", "pi-1", "bench-1",
                                                                                       "performance")  # fmt: skip
    assert row["artifact_sha256"] == jobs[0]["artifact_sha256"] and row["cfg_min_runs"] == 50
    assert (row["cfg_optimization"], row["env_numpy"], row["attempt_flags"]) == ("all", "2.0.0", "ok")
    [device] = collector.admin.get("/admin/devices").json()
    assert row["device_id"] == device["fingerprint"]


def test_the_local_results_file_the_export_and_the_schema_list_the_same_columns(collector: Harness, tmp_path):
    campaign = collector.campaign(ARCHS[:1])
    agent = collector.agent("pi-1", device="rpi4")
    [job] = agent.post("/leases", json={"max_jobs": 1}).json()["jobs"]
    agent.post("/results", json={"results": [measurement(job)]})
    response = collector.admin.get(f"/admin/campaigns/{campaign}/results")
    [exported] = [json.loads(line) for line in response.text.splitlines()]
    for suffix in (".csv", ".parquet"):
        ResultsFile(tmp_path / f"r{suffix}").append(measure_row())
    with (tmp_path / "r.csv").open(newline="") as f:
        csv_header = next(csv.reader(f))
    parquet_header = pyarrow.parquet.read_schema(tmp_path / "r.parquet").names
    schema = [c.name for c in RESULT_COLUMNS]
    assert csv_header == parquet_header == schema
    assert list(exported) == [c.name for c in EXPORT_COLUMNS] == [*schema, "device", "agent", "result_id"]
