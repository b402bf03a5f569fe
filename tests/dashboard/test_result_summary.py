"""The dashboard's result list and result panel endpoints against a real collector (both stores), fed through the
agent API: one result with a per-operator profile, one without; the panel's operator table is the one
``latbench results show`` prints."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from latbench import resultview
from latbench.client import CollectorClient
from tests.support.profiled import push_profiled
from tests.support.served import ADMIN_TOKEN, ARCHS, Clock, Harness, Served, measurement

PROFILE = {
    "runtime": "onnxruntime",
    "provider": "cpu",
    "runs": 10,
    "ops": [
        {"node": "conv_1", "op": "Conv", "ms": 3.0},
        {"node": "relu_1", "op": "Relu", "ms": 1.0},
        {"node": "conv_2", "op": "Conv", "ms": 1.0},
    ],
}
"""Conv: 4 ms per run in 2 nodes, 80% of 5 ms; Relu: 1 ms in 1 node, 20%."""
EARLIER = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@pytest.fixture
def collector(db_url: str, artifact_cache: Path, tmp_path: Path, monkeypatch) -> Iterator[Harness]:
    monkeypatch.setenv("LATBENCH_HOME", str(tmp_path / "home"))
    with Served(db_url, artifact_cache, Clock()) as harness:
        yield harness


def stored(collector: Harness) -> tuple[str, dict[str, str]]:
    """A campaign of device ``bench-1``: a stable 2 ms result with ``PROFILE`` measured first, then an unstable
    50 ms one without a profile, and the ids of both (``profiled``, ``plain``)."""
    campaign = collector.campaign(ARCHS[:2])
    agent = collector.agent("agent-1", device="bench-1")
    first, second = agent.post("/leases", json={"max_jobs": 2}).json()["jobs"]
    results = {
        "profiled": measurement(first, median_ms=2.0, profile=PROFILE, load_ms=12.5, first_run_ms=3.25,
                                peak_rss_mb=80.0, measured_at=EARLIER.isoformat()),
        "plain": measurement(second, median_ms=50.0, stable=False, flags=["high_cv", "still_busy"],
                             idle_waited_s=60.0, measured_at=(EARLIER + timedelta(minutes=1)).isoformat()),
    }  # fmt: skip
    response = agent.post("/results", json={"results": list(results.values())})
    assert response.status_code == 200, response.text
    return campaign, {name: r["result_id"] for name, r in results.items()}


@pytest.mark.slow
def test_a_profiled_result_has_its_figures_and_top_operator_types(collector: Harness):
    _, ids = stored(collector)
    response = collector.admin.get(f"/admin/results/{ids['profiled']}/summary")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["result_id"], body["device"], body["agent"]) == (ids["profiled"], "bench-1", "agent-1")
    assert (body["latency_ms"], body["min_ms"], body["max_ms"], body["runs"]) == (2.0, 1.8, 2.4, 3)
    assert (body["load_ms"], body["first_run_ms"], body["peak_rss_mb"]) == (12.5, 3.25, 80.0)
    assert body["stable"] is True and body["flag_words"] == []
    assert body["environment"]["env_cpu_model"] == "Test CPU" and body["environment"]["runtime_version"] == "1.20.0"
    assert body["op_types"] == [{"op": "Conv", "ms": 4.0, "share": 0.8, "nodes": 2},
                                {"op": "Relu", "ms": 1.0, "share": 0.2, "nodes": 1}]  # fmt: skip
    assert body["op_table"] == {
        "title": "top operator types (10 profiled runs, 5.000 ms per run in all)",
        "columns": ["op type", "ms per run", "share", "nodes"],
        "rows": [["Conv", "4.0000", "80.0%", "2"], ["Relu", "1.0000", "20.0%", "1"]],
    }
    top = collector.admin.get(f"/admin/results/{ids['profiled']}/summary", params={"top": 1}).json()
    assert top["op_table"]["rows"] == [["Conv", "4.0000", "80.0%", "2"]] and len(top["op_types"]) == 1
    with CollectorClient(collector.url, ADMIN_TOKEN) as client:
        assert body == resultview.from_collector(client, ids["profiled"]).summary(10)


def test_a_result_without_a_profile_says_so_and_its_flags_in_words(collector: Harness):
    _, ids = stored(collector)
    body = collector.admin.get(f"/admin/results/{ids['plain']}/summary").json()
    assert body["op_table"] is None and body["op_types"] == []
    assert body["stable"] is False and body["flags"] == "high_cv,still_busy" and body["idle_waited_s"] == 60.0
    assert body["flag_words"] == ["high variation between runs",
                                  "waited the full --wait-idle time and the machine was still busy"]  # fmt: skip


@pytest.mark.slow
def test_the_result_list_names_the_slowest_and_the_most_recent(collector: Harness):
    campaign, ids = stored(collector)
    body = collector.admin.get(f"/admin/campaigns/{campaign}/result-list").json()
    assert body["total"] == 2
    assert [r["result_id"] for r in body["slowest"]] == [ids["plain"], ids["profiled"]]
    assert [r["result_id"] for r in body["recent"]] == [ids["plain"], ids["profiled"]]
    plain, profiled = body["slowest"]
    assert (plain["arch"], plain["device"], plain["latency_ms"], plain["stable"]) == (ARCHS[1], "bench-1", 50.0, False)
    assert plain["flags"] == ["high_cv", "still_busy"] and plain["profiled"] is False
    assert profiled["profiled"] is True and profiled["flags"] == [] and profiled["arch"] == ARCHS[0]
    one = collector.admin.get(f"/admin/campaigns/{campaign}/result-list", params={"n": 1}).json()
    assert len(one["slowest"]) == len(one["recent"]) == 1 and one["total"] == 2
    assert collector.admin.get(f"/admin/campaigns/{campaign}/result-list", params={"n": 0}).status_code == 422
    empty = collector.campaign(ARCHS[2:3])
    assert collector.admin.get(f"/admin/campaigns/{empty}/result-list").json() == {
        "campaign_id": empty, "total": 0, "slowest": [], "recent": []}  # fmt: skip


@pytest.mark.slow
def test_both_endpoints_need_the_admin_token_and_answer_404_for_unknown_ids(collector: Harness):
    campaign, ids = stored(collector)
    agent_token = collector.enroll("agent-2").json()["agent_token"]
    for path in (f"/admin/results/{ids['profiled']}/summary", f"/admin/campaigns/{campaign}/result-list"):
        assert collector.client().get(path).status_code == 401, path
        assert collector.client("lb_admin_wrong").get(path).status_code == 401, path
        assert collector.client(agent_token).get(path).status_code == 403, path
    missing = collector.admin.get("/admin/results/nope/summary")
    assert missing.status_code == 404
    assert missing.json() == {"code": "not_found", "message": "no stored measurement 'nope'", "detail": None}
    missing = collector.admin.get("/admin/campaigns/nope/result-list")
    assert missing.status_code == 404 and missing.json()["message"] == "no campaign 'nope'"


@pytest.mark.slow  # times and profiles a real model, then runs `latbench results show` in a subprocess
def test_a_real_profile_shows_the_table_results_show_prints(collector: Harness, conv_model: Path, tmp_path: Path):
    collector.campaign(ARCHS[:1])
    agent = collector.agent("agent-1", device="bench-1")
    [job] = agent.post("/leases", json={"max_jobs": 1}).json()["jobs"]
    result_id = push_profiled(agent, job, conv_model)
    body = collector.admin.get(f"/admin/results/{result_id}/summary").json()
    assert body["op_table"]["title"].startswith("top operator types (3 profiled runs, ")
    assert "Conv" in [row[0] for row in body["op_table"]["rows"]]  # ORT may fuse the Relu into it
    assert body["load_ms"] > 0 and body["first_run_ms"] > 0 and body["peak_rss_mb"] > 0
    assert sum(t["share"] for t in body["op_types"]) == pytest.approx(1.0, abs=1e-3)

    env = {**os.environ, "COLUMNS": "160", "LATBENCH_CACHE_DIR": str(tmp_path / "cache")}
    shown = subprocess.run([sys.executable, "-c", "from latbench.cli import main; main()", "results", "show",
                            result_id, "--collector", collector.url, "--token", ADMIN_TOKEN],
                           capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert body["op_table"]["title"] in shown.stdout
    printed = [[cell.strip() for cell in line.split("│")[1:-1]] for line in shown.stdout.splitlines()]
    for row in body["op_table"]["rows"]:
        assert row in printed, (row, shown.stdout)
