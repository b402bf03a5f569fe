"""A model campaign's results as a user gets them out of a real collector: each row's ``batch`` is its model's own,
as ``latbench measure`` writes it, and ``results export`` / ``results show --json`` give JSON that joins back to the
files (hash, input shapes, device, result id), picked by device and stability."""

from __future__ import annotations

import json

from latbench.client import CollectorClient
from tests.support.served import ADMIN_TOKEN, measurement
from tests.test_local_model_rows import relu_model


def test_a_model_campaign_exports_each_model_batch_and_json_rows(served, tmp_path):
    dynamic = relu_model(tmp_path / "dyn.onnx", dims=("n", 8))
    static = relu_model(tmp_path / "pair.onnx", dims=(2, 8))
    with CollectorClient(served.url, ADMIN_TOKEN) as client:
        campaign = client.create_model_campaign([dynamic, static], "onnxruntime", input_shapes={"x": [4, 8]})
    served.wait_built(campaign)
    agent = served.agent("a1", device="vm")
    jobs = {j["arch"]: j for j in agent.post("/leases", json={"max_jobs": 2}).json()["jobs"]}
    pushed = [
        measurement(jobs["dyn.onnx"], input_shapes="x:4x8"),
        measurement(jobs["pair.onnx"], input_shapes="x:2x8", stable=False, flags=["high_cv"]),
    ]
    assert agent.post("/results", json={"results": pushed}).status_code == 200

    done = served.run_cli("results", "export", "-c", campaign, "-o", str(tmp_path / "all.ndjson"))
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in (tmp_path / "all.ndjson").read_text().splitlines()]
    assert {r["arch"]: (r["batch"], r["input_shapes"]) for r in rows} == {
        "dyn.onnx": (4, "x:4x8"),
        "pair.onnx": (2, "x:2x8"),
    }
    assert {r["cfg_reference"] for r in rows} == {True} and {r["cfg_pin_core"] for r in rows} == {None}

    stable = served.run_cli("results", "export", "-c", campaign, "-o", "-", "--stable-only")
    assert stable.returncode == 0, stable.stderr
    [only] = [json.loads(line) for line in stable.stdout.splitlines()]
    assert only["arch"] == "dyn.onnx" and only["device"] == "vm" and "1 result(s) written" in stable.stderr
    other = served.run_cli("results", "export", "-c", campaign, "-o", str(tmp_path / "none.json"), "--device", "x")
    assert other.returncode == 0 and json.loads((tmp_path / "none.json").read_text()) == []
    wrong = served.run_cli("results", "export", "-c", campaign, "-o", str(tmp_path / "r.txt"))
    assert wrong.returncode == 2 and ".json or .ndjson" in wrong.stderr

    shown = served.run_cli("results", "show", only["result_id"], "--json")
    assert shown.returncode == 0, shown.stderr
    [view] = json.loads(shown.stdout)
    assert view["flags"] == "" and view["device"] == "vm" and view["result_id"] == only["result_id"]
    assert view["artifact_sha256"] == only["artifact_sha256"] and view["input_shapes"] == "x:4x8"


def test_a_result_without_a_reference_reading_says_no_probe_watched(served, tmp_path):
    """A remote device's agent runs no reference probe (its results carry no ``ref_ratio``): the row says so."""
    campaign = served.campaign()
    agent = served.agent("remote-1", device="board")
    jobs = agent.post("/leases", json={"max_jobs": 2}).json()["jobs"]
    pushed = [measurement(jobs[0], ref_ratio=None), measurement(jobs[1])]
    assert agent.post("/results", json={"results": pushed}).status_code == 200
    done = served.run_cli("results", "export", "-c", campaign, "-o", "-")
    assert done.returncode == 0, done.stderr
    rows = {r["arch"]: r for r in map(json.loads, done.stdout.splitlines())}
    assert rows[jobs[0]["arch"]]["cfg_reference"] is False and rows[jobs[1]["arch"]]["cfg_reference"] is True
