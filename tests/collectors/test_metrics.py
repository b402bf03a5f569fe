"""``GET /metrics``: valid Prometheus text whose gauges follow the store and whose counters follow the requests,
readable with a metrics or admin token only (or by anyone where the operator opens it), behind the schema gate."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from latbench.collectors.metrics import Family, Sample, exposition
from tests.collectors.test_operations import NEWER, stamp
from tests.support.processes import LATBENCH, Collector, env, wait_for
from tests.support.served import (
    ADMIN_TOKEN,
    ARCHS,
    LEASE_TTL_S,
    Clock,
    Harness,
    Served,
    failure,
    measurement,
)

Series = tuple[str, frozenset[tuple[str, str]]]
_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(rf"^({_NAME})(?:\{{(.*)\}})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')
_SUFFIXES = {"counter": ("",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}


def parse(text: str) -> tuple[dict[Series, float], dict[str, str]]:
    """The samples and family types of a Prometheus text exposition (format 0.0.4), checked strictly: every
    family typed once and before its samples, which follow it together; names, labels and values well formed;
    no series twice; counters not negative; histogram buckets cumulative, up to ``+Inf`` equal to ``_count``."""
    assert text.endswith("\n"), "the exposition ends with a line feed"
    samples: dict[Series, float] = {}
    types: dict[str, str] = {}
    family = None
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP "):
            assert re.fullmatch(rf"# HELP {_NAME} .*", line), line
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert re.fullmatch(_NAME, name) and kind in _SUFFIXES and name not in types, line
            types[name], family = kind, name
        else:
            match = _SAMPLE.match(line)
            assert match and family is not None, line
            name, labels, value = match.groups()
            assert any(name == family + suffix for suffix in _SUFFIXES[types[family]]), (family, line)
            pairs = _labels(labels or "")
            series = (name, frozenset(pairs.items()))
            assert series not in samples, f"{line} twice"
            samples[series] = float(value.replace("Inf", "inf"))
            assert types[family] != "counter" or samples[series] >= 0, line
    _check_histograms(samples, types)
    return samples, types


def _labels(text: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    position = 0
    while position < len(text):
        match = _LABEL.match(text, position)
        assert match, text
        name, value = match.group(1), match.group(2)
        assert name not in pairs, text
        pairs[name] = re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)
        position = match.end()
    return pairs


def _check_histograms(samples: dict[Series, float], types: dict[str, str]) -> None:
    for family in (name for name, kind in types.items() if kind == "histogram"):
        buckets: dict[frozenset[tuple[str, str]], list[tuple[float, float]]] = {}
        for (name, labels), value in samples.items():
            if name == family + "_bucket":
                rest = frozenset(p for p in labels if p[0] != "le")
                buckets.setdefault(rest, []).append((float(dict(labels)["le"].replace("Inf", "inf")), value))
        for labels, counts in buckets.items():
            counts.sort()
            assert [c for _, c in counts] == sorted(c for _, c in counts), (family, labels, counts)
            assert counts[-1][0] == math.inf and counts[-1][1] == samples[(family + "_count", labels)]


def scrape(collector: Harness, token: str | None) -> dict[Series, float]:
    response = httpx.get(collector.url + "/metrics", headers=_bearer(token), timeout=60)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse(response.text)[0]


def _bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def value(samples: dict[Series, float], name: str, **labels: str) -> float:
    """The value of the one series of ``name`` with ``labels``, or the sum over the series of this process."""
    found = [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls]
    assert found, (name, labels)
    return sum(found)


def moved(before: dict[Series, float], after: dict[Series, float], name: str, **labels: str) -> float:
    """How far a counter moved between two scrapes (counters are this test process's, shared with other tests)."""
    was = [v for (n, ls), v in before.items() if n == name and set(labels.items()) <= ls]
    return value(after, name, **labels) - sum(was)


def metrics_token(collector: Harness, name: str = "prometheus") -> dict[str, str]:
    response = collector.admin.post("/admin/metrics-tokens", json={"name": name})
    assert response.status_code == 201, response.text
    return response.json()


def test_the_exposition_escapes_what_the_format_requires_and_the_parser_reads_it_back():
    family = Family("latbench_x", "gauge", "help with \\ and\nnewline", [Sample("latbench_x", {"a": 'q"b\\n\nc'}, 1.5)])
    text = exposition([family, Family("latbench_y", "counter", "y", [Sample("latbench_y", {}, math.inf)])])
    assert 'latbench_x{a="q\\"b\\\\n\\nc"} 1.5\n' in text and "# HELP latbench_x help with \\\\ and\\nnewline" in text
    samples, types = parse(text)
    assert samples[("latbench_x", frozenset({("a", 'q"b\\n\nc')}))] == 1.5
    assert samples[("latbench_y", frozenset())] == math.inf and types == {
        "latbench_x": "gauge",
        "latbench_y": "counter",
    }


def test_a_scrape_follows_a_campaign_through_leases_results_and_expiry(collector: Harness):
    token = metrics_token(collector)["token"]
    before = scrape(collector, token)
    assert value(before, "latbench_devices") == 0 and value(before, "latbench_results_stored") == 0
    assert value(before, "latbench_jobs") == 0 and value(before, "latbench_oldest_lease_age_seconds") == 0

    campaign = collector.campaign(ARCHS, name="secret-campaign-name")
    agent = collector.agent("pi-1", device="rack-device-7")
    jobs = agent.post("/leases", json={"max_jobs": 3}).json()["jobs"]
    pushed = agent.post("/results", json={"results": [measurement(jobs[0]), failure(jobs[1])]})
    assert pushed.status_code == 200, pushed.text
    assert agent.post("/results", json={"results": [{**measurement(jobs[0]), "job_id": "nope"}]}).status_code == 404
    collector.clock.advance(10)
    during = scrape(collector, token)
    assert value(during, "latbench_jobs", campaign_state="active", state="done") == 1
    assert value(during, "latbench_jobs", campaign_state="active", state="leased") == 1
    assert value(during, "latbench_jobs", campaign_state="active", state="pending") == len(ARCHS) - 2
    assert value(during, "latbench_campaigns", state="active") == 1 and value(during, "latbench_devices") == 1
    assert value(during, "latbench_leases_outstanding") == 1
    assert value(during, "latbench_oldest_lease_age_seconds") == pytest.approx(10, abs=1)
    assert value(during, "latbench_results_stored") == 2 and value(during, "latbench_agents", state="online") == 1
    assert value(during, "latbench_last_finished_timestamp_seconds") == pytest.approx(
        (collector.clock.now.timestamp() - 10), abs=5
    )
    assert moved(before, during, "latbench_enrollments_total") == 1
    assert moved(before, during, "latbench_leases_granted_total") == 3
    assert moved(before, during, "latbench_results_received_total", outcome="stored") == 1
    assert moved(before, during, "latbench_results_received_total", outcome="requeued") == 1
    assert moved(before, during, "latbench_result_batches_rejected_total") == 1
    route = {"route": "/v1/results", "method": "POST"}
    assert moved(before, during, "latbench_http_requests_total", **route, status_class="2xx") == 1
    assert moved(before, during, "latbench_http_requests_total", **route, status_class="4xx") == 1
    assert moved(before, during, "latbench_http_request_duration_seconds_count", **route) == 2

    collector.clock.advance(LEASE_TTL_S)  # the third lease lapses; a second agent of the device takes its job back
    second = collector.agent("pi-2", device="rack-device-7")
    taken = second.post("/leases", json={"max_jobs": len(ARCHS)}).json()["jobs"]
    assert jobs[2]["job_id"] in {j["job_id"] for j in taken}
    released = second.post("/leases/release", json={"lease_ids": [taken[-1]["lease_id"]]})
    assert released.json()["released"] == [taken[-1]["lease_id"]]
    later = scrape(collector, token)
    assert moved(during, later, "latbench_lease_expiries_total") == 1
    assert moved(during, later, "latbench_leases_released_total") == 1
    assert (
        value(later, "latbench_agents", state="offline") == 1 and value(later, "latbench_agents", state="online") == 1
    )

    remaining = taken[:-1]
    while batch := remaining + second.post("/leases", json={"max_jobs": len(ARCHS)}).json()["jobs"]:
        remaining = []
        assert second.post("/results", json={"results": [measurement(j) for j in batch]}).status_code == 200
    done = scrape(collector, token)
    assert collector.status(campaign)["state"] == "done"
    assert value(done, "latbench_campaigns", state="finished") == 1 and value(done, "latbench_campaigns") == 1
    assert value(done, "latbench_jobs", campaign_state="finished", state="done") == len(ARCHS)
    assert value(done, "latbench_jobs", state="pending") == value(done, "latbench_leases_outstanding") == 0
    assert value(done, "latbench_oldest_lease_age_seconds") == 0
    text = httpx.get(collector.url + "/metrics", headers=_bearer(token), timeout=60).text
    for unbounded in (campaign, "secret-campaign-name", "rack-device-7", "pi-1", jobs[0]["job_id"]):
        assert unbounded not in text  # labels name route templates and states, never ids or names
    assert '/v1/admin/campaigns/{campaign_id}"' in text


def test_paused_and_cancelled_campaigns_are_counted_apart(collector: Harness):
    paused, cancelled = collector.campaign(ARCHS[:2]), collector.campaign(ARCHS[2:3], devices=["named-device"])
    collector.campaign(ARCHS[3:], devices=["named-device"])
    assert len(collector.agent("pi-1").post("/leases", json={"max_jobs": 1}).json()["jobs"]) == 1
    assert collector.admin.post(f"/admin/campaigns/{paused}/pause").status_code == 200
    assert collector.admin.post(f"/admin/campaigns/{cancelled}/cancel").status_code == 200
    samples = scrape(collector, ADMIN_TOKEN)
    states = ("active", "paused", "cancelled", "finished")
    assert [value(samples, "latbench_campaigns", state=s) for s in states] == [1, 1, 1, 0]
    assert value(samples, "latbench_jobs", campaign_state="paused", state="leased") == 1  # it runs out as usual
    assert value(samples, "latbench_jobs", campaign_state="paused", state="pending") == 1
    assert value(samples, "latbench_jobs", campaign_state="cancelled", state="pending") == 1  # waits for its device
    assert value(samples, "latbench_jobs", campaign_state="active", state="pending") == len(ARCHS) - 3


def test_metrics_need_a_metrics_or_admin_token_and_a_metrics_token_reads_nothing_else(collector: Harness):
    created = metrics_token(collector)
    assert created["token"].startswith("lb_metrics_")
    agent = collector.agent("pi-1")
    before = scrape(collector, created["token"])
    state = collector.dump()
    refused = {
        None: 401,
        "lb_metrics_0123456789abcdef_" + "x" * 43: 401,
        collector.enroll_token(): 403,
        agent.headers["Authorization"][len("Bearer ") :]: 403,
    }
    for token, status in refused.items():
        response = httpx.get(collector.url + "/metrics", headers=_bearer(token), timeout=60)
        assert response.status_code == status and response.json()["code"] in ("unauthenticated", "forbidden")
    metrics = collector.client(created["token"])
    writes = [("/admin/campaigns", {"space": "nb201", "archs": ARCHS[:1]}), ("/admin/metrics-tokens", {}),
              ("/admin/agents/pi-1/revoke", None), ("/enroll", {}), ("/leases", {})]  # fmt: skip
    for path, body in writes:
        response = metrics.post(path, json=body)
        assert response.status_code == 403, (path, response.text)
        assert "not a metrics token" in response.json()["message"]
    for path in ("/admin/devices", "/admin/campaigns", "/admin/metrics-tokens", "/admin/agents"):
        assert metrics.get(path).status_code == 403, path
    assert collector.client().get("/admin/devices").status_code == 401
    assert collector.dump() == state
    after = scrape(collector, ADMIN_TOKEN)
    assert moved(before, after, "latbench_auth_failures_total", reason="unauthenticated") == 1  # scrapes: not counted
    assert moved(before, after, "latbench_auth_failures_total", reason="forbidden") == len(writes) + 4

    listed = collector.admin.get("/admin/metrics-tokens").json()
    assert [(t["token_id"], t["name"], t["revoked_at"]) for t in listed] == [(created["token_id"], "prometheus", None)]
    assert collector.admin.post(f"/admin/metrics-tokens/{created['token_id']}/revoke").status_code == 200
    gone = httpx.get(collector.url + "/metrics", headers=_bearer(created["token"]), timeout=60)
    assert gone.status_code == 401
    unknown = collector.admin.post("/admin/metrics-tokens/env-admin/revoke")  # an admin token is not one
    assert unknown.status_code == 404 and "latbench token list --kind metrics" in unknown.json()["message"]


def test_an_operator_may_open_the_metrics_to_a_private_network(tmp_path: Path, artifact_cache: Path):
    with Served(f"sqlite:///{tmp_path / 'c.sqlite'}", artifact_cache, Clock(), metrics_public=True) as collector:
        assert value(scrape(collector, None), "latbench_devices") == 0
        assert collector.client().get("/admin/devices").status_code == 401  # nothing else opens with it


def test_metrics_answer_503_while_the_store_is_at_another_schema(collector: Harness, db_url: str):
    token = metrics_token(collector)["token"]
    before = scrape(collector, token)
    stamp(db_url, NEWER)
    assert collector.client().get("/ready").status_code == 503  # reads the revision now
    refused = httpx.get(collector.url + "/metrics", headers=_bearer(token), timeout=60)
    assert refused.status_code == 503 and refused.json()["code"] == "schema_mismatch"
    assert collector.admin.get("/admin/campaigns").status_code == 503  # answered before routing, counted by route
    assert collector.client().get("/health").status_code == 200
    stamp(db_url, collector.client().get("/health").json()["schema"])
    assert collector.client().get("/ready").status_code == 200
    samples = scrape(collector, token)
    assert moved(before, samples, "latbench_http_requests_total", route="/v1/admin/campaigns", status_class="5xx") == 1
    assert not [labels for _, labels in samples if ("route", "/metrics") in labels]
    schema = [dict(ls) for n, ls in samples if n == "latbench_store_schema_info"]
    assert len(schema) == 1 and schema[0]["schema"] == schema[0]["serves"]


@pytest.mark.slow
def test_a_reference_model_that_cannot_be_built_finishes_its_campaign_with_failed_artifacts(
    tmp_path: Path, clock: Clock
):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("the artifact cache cannot live under a file\n")
    with Served(f"sqlite:///{tmp_path / 'c.sqlite'}", blocked / "artifacts", clock) as collector:
        campaign = collector.campaign(wait=False, samples=2)
        wait_for(lambda: collector.status(campaign)["state"] != "building", 30, "the build to fail")
        samples = scrape(collector, ADMIN_TOKEN)
        assert value(samples, "latbench_campaigns", state="finished") == 1
        assert value(samples, "latbench_artifacts", state="failed") >= 1


@pytest.mark.slow  # CLI subprocesses
def test_metrics_tokens_on_the_command_line(collector: Harness):
    created = collector.run_cli("token", "create", "--kind", "metrics", "--name", "prom")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("lb_metrics_") and "metrics token" in created.stderr
    assert value(scrape(collector, token), "latbench_devices") == 0
    listed = collector.run_cli("token", "list", "--kind", "metrics", "--json")
    assert [(t["name"], t["status"]) for t in json.loads(listed.stdout)] == [("prom", "live")]
    both = collector.run_cli("token", "create", "--admin", "--kind", "metrics")
    assert both.returncode == 2 and "--admin is --kind admin" in both.stderr
    wrong = collector.run_cli("token", "list", "--kind", "agent")
    assert wrong.returncode == 2 and "'agent' is not one of: enroll, admin, metrics" in wrong.stderr
    revoked = collector.run_cli("token", "revoke", "--kind", "metrics", token)
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.strip() == json.loads(listed.stdout)[0]["token_id"]
    assert httpx.get(collector.url + "/metrics", headers=_bearer(token), timeout=60).status_code == 401


@pytest.fixture
def opened(tmp_path: Path, artifact_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Collector]:
    """``latbench collector serve --workers 2`` with ``LATBENCH_METRICS_PUBLIC=1``."""
    monkeypatch.setenv("LATBENCH_METRICS_PUBLIC", "1")
    collector = Collector(None, tmp_path / "data", 0, None, artifact_cache, "--workers", "2")
    try:
        yield collector.start()
    finally:
        assert collector.stop(signal.SIGTERM) == 0


@pytest.mark.slow
def test_each_worker_process_counts_its_own_requests_under_its_process_label(opened: Collector):
    processes: set[str] = set()

    def both_answered() -> bool:
        with httpx.Client(timeout=30) as fresh:  # a new connection: the kernel picks the process
            text = fresh.get(opened.url + "/metrics").text
        processes.update(dict(ls)["process"] for n, ls in parse(text)[0] if n == "latbench_process_start_time_seconds")
        return len(processes) == 2

    wait_for(both_answered, 60, "both processes to answer a scrape")
    assert opened.proc is not None and str(opened.proc.pid) in processes


@pytest.mark.slow
def test_a_bad_metrics_switch_stops_the_start_in_one_line(tmp_path: Path):
    serve = [*LATBENCH, "collector", "serve", "--data-dir", str(tmp_path), "--port", "0"]
    done = subprocess.run(serve, capture_output=True, text=True, timeout=120, env=env(LATBENCH_METRICS_PUBLIC="yes"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "error: LATBENCH_METRICS_PUBLIC must be 1 (serve /metrics without a token) or 0, not 'yes'" in done.stderr
    assert not (tmp_path / "collector.sqlite").exists() and os.listdir(tmp_path) == []


def test_retired_devices_are_counted_apart(collector: Harness):
    collector.agent("a1", device="old-board")
    collector.agent("a2", device="other-board")
    assert collector.admin.post("/admin/devices/old-board/retire").status_code == 200
    samples = scrape(collector, ADMIN_TOKEN)
    assert value(samples, "latbench_devices", state="live") == 1
    assert value(samples, "latbench_devices", state="retired") == 1
