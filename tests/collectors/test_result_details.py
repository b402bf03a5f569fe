"""Result details (load, first run, peak memory, the --wait-idle wait) and per-operator profiles through a real
collector: a real measurement pushed by the agent's own report, stored, exported, written to a results file and
shown; results of older agents and of an older store have none of them."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from latbench import profiles, resultview
from latbench.agents.measure import TimingSettings, load_cold, time_model
from latbench.agents.reports import result_item
from latbench.agents.runtimes.onnxruntime import OnnxRuntime
from latbench.client import CollectorClient
from latbench.collectors import campaigns, export
from latbench.collectors.db import Store
from latbench.collectors.migrations import upgrade
from latbench.collectors.models import Base
from latbench.protocol import JobSpec, MeasurementSettings
from latbench.resultfile import read_results, write_results
from tests.support.served import ADMIN_TOKEN, ARCHS, Harness, measurement

DETAILS = ("load_ms", "first_run_ms", "peak_rss_mb", "idle_waited_s", "idle_load")


def _export(collector: Harness, campaign: str) -> list[dict[str, Any]]:
    response = collector.admin.get(f"/admin/campaigns/{campaign}/results")
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines()]


@pytest.mark.slow
def test_a_profiled_measurement_round_trips_through_the_collector_and_its_export(
    collector: Harness, conv_model: Path, tmp_path: Path
):
    campaign = collector.campaign(ARCHS[:1])
    agent = collector.agent("pi-1", device="rpi4")
    [job] = agent.post("/leases", json={"max_jobs": 1}).json()["jobs"]
    engine = OnnxRuntime()
    cold = load_cold(engine, conv_model)
    settings = TimingSettings(warmup_runs=2, warmup_time_s=0.0, min_runs=10, min_time_s=0.02, profile_runs=3)
    m = time_model(engine, settings, cold=cold)
    item = result_item(JobSpec.model_validate(job), m, engine)
    engine.close()
    pushed = agent.post("/results", json={"results": [item.model_dump(mode="json")]})
    assert pushed.status_code == 200 and pushed.json()["acks"][0]["status"] == "stored", pushed.text

    [row] = _export(collector, campaign)
    assert {k: row[k] for k in DETAILS} == {k: getattr(m, k) for k in DETAILS}
    assert row["load_ms"] > 0 and row["peak_rss_mb"] > 0 and row["idle_load"] is None
    assert isinstance(row["profile"], dict) and row["profile"]["runs"] == 3
    assert row["result_id"] == str(item.result_id)

    out = tmp_path / "export.csv"
    write_results(out, [row])
    [stored] = read_results(out)
    assert str(stored["profile"]).endswith(".json.gz") and stored["load_ms"] == row["load_ms"]
    [view] = resultview.from_file(out)
    assert view.op_types(1)[0].op == "Conv"

    with CollectorClient(collector.url, ADMIN_TOKEN) as client:
        one = resultview.from_collector(client, str(item.result_id))
    assert one.figures()["load_ms"] == row["load_ms"] and one.profile == profiles.load(out, stored)


def test_a_result_of_an_older_agent_exports_empty_details(collector: Harness):
    campaign = collector.campaign(ARCHS[:1])
    agent = collector.agent("pi-1", device="rpi4")
    [job] = agent.post("/leases", json={"max_jobs": 1}).json()["jobs"]
    assert agent.post("/results", json={"results": [measurement(job)]}).status_code == 200
    [row] = _export(collector, campaign)
    assert all(row[k] is None for k in (*DETAILS, "profile")) and row["latency_ms"] == 1.0


def test_an_unknown_result_id_is_a_clear_404(collector: Harness):
    response = collector.admin.get("/admin/results/nope")
    assert response.status_code == 404 and "no stored measurement 'nope'" in response.text


def test_0005_upgrades_a_0004_store_whose_results_keep_their_figures(db_url: str):
    store = Store(db_url)
    try:
        upgrade(store.engine, "0004")
        now = datetime.now(timezone.utc)
        settings = MeasurementSettings().model_dump_json()
        rows = [
            ("artifacts", {"key_digest": "a" * 64, "space": "nb201", "arch": ARCHS[0], "batch": 1, "resolution": 32,
                           "classes": 10, "opset": 17, "seed": 0, "requested_at": now, "sha256": "b" * 64}),
            ("campaigns", {"id": "c1", "space": "nb201", "seed": 0, "samples": 1, "runtime": "onnxruntime",
                           "provider": "cpu", "batch": 1, "threads": 1, "resolution": 32, "classes": 10, "opset": 17,
                           "settings": settings, "devices": "[]", "max_failures": 3, "created_at": now}),
            ("campaign_archs", {"campaign_id": "c1", "position": 0, "arch": ARCHS[0], "artifact_digest": "a" * 64}),
            ("devices", {"id": "d1", "name": "dev", "fingerprint": "0" * 16, "machine": "{}", "first_seen": now}),
            ("campaign_devices", {"campaign_id": "c1", "device_id": "d1", "joined_at": now, "created": 1}),
            ("agents", {"id": "g1", "name": "pi-1", "device_id": "d1", "machine": "{}", "runtimes": "[]",
                        "enrolled_at": now, "last_seen": now}),
            ("jobs", {"id": "j1", "campaign_id": "c1", "device_id": "d1", "position": 0, "state": "done",
                      "leases": 1, "errors": 0, "expirations": 0, "result_id": "r1", "finished_at": now}),
            ("leases", {"id": "l1", "job_id": "j1", "agent_id": "g1", "granted_at": now, "expires_at": now}),
            ("results", {"id": "r1", "job_id": "j1", "lease_id": "l1", "agent_id": "g1", "received_at": now,
                         "measured_at": now, "median_ms": 2.5, "mean_ms": 2.5, "std_ms": 0.1, "min_ms": 2.0,
                         "max_ms": 3.0, "p90_ms": 2.8, "p99_ms": 3.0, "mad_ms": 0.1, "cv": 0.04, "runs": 3,
                         "warmup_runs": 10, "attempts": 1, "stable": True, "flags": "[]", "attempt_flags": "[[]]",
                         "wall_s": 1.0, "runtime_version": "1.20.0", "optimization": "all",
                         "latbench_version": "0.1.0", "numpy_version": "2.0.0"}),
        ]  # fmt: skip
        with store.engine.begin() as conn:
            for table, row in rows:
                conn.execute(sa.text(f"INSERT INTO {table} ({', '.join(row)}) VALUES (:{', :'.join(row)})"), row)
        upgrade(store.engine)
        with store.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        with store.read() as session:
            [exported] = export.rows(session, campaigns.get(session, "c1"))
        assert exported["latency_ms"] == 2.5 and exported["arch"] == ARCHS[0]
        assert all(exported[k] is None for k in (*DETAILS, "profile"))
    finally:
        store.close()


def test_a_profiled_campaign_asks_its_agents_for_profiles_and_others_never_name_the_setting(collector: Harness):
    profiled = collector.campaign(ARCHS[:1], settings={"profile_runs": 10}, name="profiled")
    plain = collector.campaign(ARCHS[1:2], name="plain")
    agent = collector.agent("pi-1", device="rpi4")
    jobs = {j["campaign_id"]: j for j in agent.post("/leases", json={"max_jobs": 2}).json()["jobs"]}
    assert jobs[profiled]["settings"]["profile_runs"] == 10
    assert "profile_runs" not in jobs[plain]["settings"]  # agents from before --profile refuse unknown fields
    assert TimingSettings(**JobSpec.model_validate(jobs[profiled]).settings.model_dump()).profile_runs == 10
