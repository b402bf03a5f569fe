"""The dashboard's JSON endpoints and files, against a real collector (both stores) fed through the agent API."""

from __future__ import annotations

import math
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from scipy.stats import spearmanr

from latbench.spaces import get_space
from tests.support.served import ARCHS, Clock, Harness, Served, extreme_campaign, measurement

MEDIANS = [1.0, 2.0, 3.0, 4.0, 5.0]


@pytest.fixture
def models(tmp_path: Path) -> Path:
    return tmp_path / "models"


@pytest.fixture
def collector(db_url: str, artifact_cache: Path, models: Path, tmp_path: Path, monkeypatch) -> Iterator[Harness]:
    monkeypatch.setenv("LATBENCH_HOME", str(tmp_path / "home"))
    with Served(db_url, artifact_cache, Clock(), models_dir=models) as harness:
        yield harness


@pytest.fixture
def measured(collector: Harness) -> str:
    """A campaign whose five architectures were measured on device ``bench-1`` at 1, 2, 3, 4 and 5 ms."""
    campaign = collector.campaign()
    agent = collector.agent("agent-1", device="bench-1")
    jobs = agent.post("/leases", json={"max_jobs": 5}).json()["jobs"]
    latency = {arch: median for arch, median in zip(ARCHS, MEDIANS)}
    results = [measurement(job, median_ms=latency[job["arch"]]) for job in jobs]
    assert agent.post("/results", json={"results": results}).status_code == 200
    return campaign


def endpoints(campaign: str) -> list[str]:
    device = f"/admin/campaigns/{campaign}/devices/bench-1"
    return [f"/admin/campaigns/{campaign}/latency-histogram", f"{device}/results", f"{device}/predictions",
            f"/admin/campaigns/{campaign}/card", "/admin/datasets", "/admin/datasets/help-nb201"]  # fmt: skip


@pytest.mark.slow
def test_every_dashboard_endpoint_needs_the_admin_token(collector: Harness, measured: str):
    agent_token = collector.enroll("agent-2").json()["agent_token"]
    for path in endpoints(measured):
        assert collector.client().get(path).status_code == 401, path
        assert collector.client("lb_admin_wrong").get(path).status_code == 401, path
        assert collector.client(agent_token).get(path).status_code == 403, path
        assert collector.admin.get(path).status_code == 200, path


def test_the_page_and_its_files_are_served_without_a_token_and_nothing_else(collector: Harness):
    page = collector.client().get(collector.url + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for name in ("app.js", "charts.js", "style.css", "favicon.svg"):
        assert collector.client().get(f"{collector.url}/static/{name}").status_code == 200, name
    assert 'src="/static/app.js"' in page.text
    assert not re.search(r'(src|href)="(https?:)?//', page.text), "the page loads nothing from elsewhere"
    for name in ("nope.js", "..%2Fdashboard.py", "%2E%2E%2Fapp.py"):
        response = collector.client().get(f"{collector.url}/static/{name}")
        assert response.status_code == 404 and response.json()["code"] == "not_found", name


def test_latency_histogram_per_device(collector: Harness, measured: str):
    body = collector.admin.get(f"/admin/campaigns/{measured}/latency-histogram", params={"bins": 4}).json()
    [device] = body["devices"]
    assert device["device"] == "bench-1" and device["n"] == 5
    assert device["edges"] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert device["counts"] == [1, 1, 1, 2]
    assert (device["min_ms"], device["median_ms"], device["max_ms"]) == (1.0, 3.0, 5.0)
    assert collector.admin.get(f"/admin/campaigns/{measured}/latency-histogram", params={"bins": 0}).status_code == 422
    missing = collector.admin.get("/admin/campaigns/nope/latency-histogram")
    assert missing.status_code == 404 and missing.json()["message"] == "no campaign 'nope'"


@pytest.mark.slow
def test_latencies_a_few_ulps_apart_or_near_the_largest_float_make_a_histogram(collector: Harness):
    campaign = extreme_campaign(collector)
    response = collector.admin.get(f"/admin/campaigns/{campaign}/latency-histogram")
    assert response.status_code == 200, response.text
    devices = {d["device"]: d for d in response.json()["devices"]}
    assert devices["ulps"]["counts"] == [5] and devices["ulps"]["edges"] == [1.0, math.nextafter(1.0, 2.0)]
    huge = devices["huge"]
    assert huge["counts"] == [5] and huge["max_ms"] == huge["median_ms"] == sys.float_info.max


def test_a_campaign_without_results_has_an_empty_histogram_and_no_card(collector: Harness):
    campaign = collector.campaign(wait=False)
    assert collector.admin.get(f"/admin/campaigns/{campaign}/latency-histogram").json()["devices"] == []
    assert collector.admin.get(f"/admin/campaigns/{campaign}/card").json() == {
        "card": None,
        "reason": "no finished results yet",
    }


def test_results_of_one_device(collector: Harness, measured: str):
    rows = collector.admin.get(f"/admin/campaigns/{measured}/devices/bench-1/results").json()
    assert [(r["arch"], r["latency_ms"]) for r in rows] == list(zip(ARCHS, MEDIANS))
    assert {r["agent"] for r in rows} == {"agent-1"} and all(r["stable"] for r in rows)
    missing = collector.admin.get(f"/admin/campaigns/{measured}/devices/nope/results")
    assert missing.status_code == 404 and missing.json()["message"] == "no device 'nope'"


def test_predictions_say_why_there_are_none(collector: Harness, measured: str, models: Path):
    path = f"/admin/campaigns/{measured}/devices/bench-1/predictions"
    body = collector.admin.get(path).json()
    assert body["available"] is False and body["points"] == [] and body["model"] is None
    assert body["reason"].startswith("no predictor for this device")
    models.mkdir()
    (models / "bench-1.pt").write_bytes(b"not a model")
    body = collector.admin.get(path).json()
    assert body["available"] is False and body["model"] == "bench-1.pt"
    assert body["reason"].startswith("cannot use the predictor bench-1.pt: ")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real predictor files for device ``bench-1``, transferred from its measurements (cheap fits, no network):
    ``cost-ridge`` and ``flops`` (which predict differently) for NB201, and one of the other search space.
    """
    from latbench import predictor

    out = tmp_path_factory.mktemp("predictors")
    files = {}
    for method in ("cost-ridge", "flops"):
        pretrained = predictor.pretrain("nb201", ["pixel3"], method=method)
        files[method] = predictor.transfer(pretrained, "bench-1", ARCHS, MEDIANS, method=method).save(out / method)
    pretrained = predictor.pretrain("fbnet", ["pixel3"], method="flops")
    fbnet_archs = get_space("fbnet").sample(3, 0)
    files["fbnet"] = predictor.transfer(pretrained, "bench-1", fbnet_archs, [1.0, 2.0, 3.0]).save(out / "fbnet")
    return files


@pytest.mark.slow
def test_measured_against_predicted(collector: Harness, measured: str, models: Path, trained, monkeypatch):
    from latbench.predictor import Predictor

    loads = []
    real_load = Predictor.load.__func__
    monkeypatch.setattr(Predictor, "load", classmethod(lambda cls, path: loads.append(path) or real_load(cls, path)))
    models.mkdir()
    model = models / "bench-1.pt"
    shutil.copyfile(trained["cost-ridge"], model)
    path = f"/admin/campaigns/{measured}/devices/bench-1/predictions"
    body = collector.admin.get(path).json()
    assert body["available"] is True and body["model"] == "bench-1.pt" and body["reason"] is None
    expected = real_load(Predictor, trained["cost-ridge"]).predict(ARCHS).tolist()
    assert [(p["arch"], p["measured_ms"], p["predicted_ms"]) for p in body["points"]] == list(
        zip(ARCHS, MEDIANS, expected)
    )
    assert body["srcc"] == pytest.approx(spearmanr(MEDIANS, expected).statistic)
    assert collector.admin.get(path).json() == body and len(loads) == 1, "loaded once, then kept"
    shutil.copyfile(trained["flops"], model)
    os.utime(model, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    body = collector.admin.get(path).json()
    assert len(loads) == 2, "a replaced model file is loaded again"
    expected = real_load(Predictor, trained["flops"]).predict(ARCHS).tolist()
    assert [p["predicted_ms"] for p in body["points"]] == expected


def test_a_predictor_of_another_space_is_refused_with_the_reason(
    collector: Harness, measured: str, models: Path, trained
):
    models.mkdir()
    shutil.copyfile(trained["fbnet"], models / "bench-1.pt")
    body = collector.admin.get(f"/admin/campaigns/{measured}/devices/bench-1/predictions").json()
    assert body["available"] is False and body["points"] == []
    assert body["reason"] == (
        "cannot use the predictor bench-1.pt: it predicts fbnet architectures; this campaign measures nb201"
    )


@pytest.mark.slow
def test_the_campaign_card_is_the_dataset_build_would_make(collector: Harness, measured: str):
    card = collector.admin.get(f"/admin/campaigns/{measured}/card").json()["card"]
    assert card["name"] == f"campaign-{measured}" and card["space"] == "nb201" and card["n_archs"] == 5
    [device] = card["devices"]
    assert (device["name"], device["measured"], device["coverage"]) == ("bench-1", 5, 1.0)
    assert device["runtime"] == "onnxruntime" and device["quality"]["results"] == 5
    assert card["provenance"]["campaign"] == measured and card["provenance"]["results"] == 5


def test_dataset_list_and_cards(collector: Harness):
    listed = collector.admin.get("/admin/datasets").json()
    assert listed["reason"] is None
    assert [d["name"] for d in listed["datasets"]] == [
        "help-nb201", "help-fbnet", "help-ofa", "here-nb201-int8", "here-fbnet-int8"
    ]  # fmt: skip
    card = collector.admin.get("/admin/datasets/help-nb201").json()
    assert card["n_archs"] == 15625 and len(card["devices"]) == 27 and card["builtin"] is True
    for name in ("nope", "Bad%20Name"):
        response = collector.admin.get(f"/admin/datasets/{name}")
        assert response.status_code == 404 and response.json()["code"] == "not_found", name
