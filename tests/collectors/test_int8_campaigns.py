"""int8 campaigns on the collector: jobs carry the quantised artifact and reference model, fp32 and int8
artifacts of one network stay apart, and a runtime without int8 is refused at creation."""

from __future__ import annotations

import io

import onnx
import pytest
from sqlalchemy import select

from latbench.collectors.models import CampaignRow
from tests.support.served import ARCHS, Harness


@pytest.mark.slow  # quantises a network and the reference model
def test_an_int8_campaign_leases_quantised_artifacts(collector: Harness):
    fp32 = collector.campaign(ARCHS[:1])
    int8 = collector.campaign(ARCHS[:1], precision="int8")
    agent = collector.agent("ort")
    jobs = {job["campaign_id"]: job for job in agent.post("/leases", json={"max_jobs": 4}).json()["jobs"]}
    assert (jobs[fp32]["artifact_format"], jobs[int8]["artifact_format"]) == ("onnx", "int8.onnx")
    assert jobs[fp32]["artifact_sha256"] != jobs[int8]["artifact_sha256"]
    assert jobs[fp32]["reference_sha256"] != jobs[int8]["reference_sha256"]
    for sha in (jobs[int8]["artifact_sha256"], jobs[int8]["reference_sha256"]):
        response = agent.get(f"/artifacts/{sha}")
        assert response.status_code == 200
        ops = {node.op_type for node in onnx.load(io.BytesIO(response.content)).graph.node}
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    with collector.store.read() as session:
        assert session.scalar(select(CampaignRow.format).where(CampaignRow.id == int8)) == "int8.onnx"
    # campaign status says which precision a campaign measures
    assert [collector.admin.get(f"/admin/campaigns/{c}").json()["precision"] for c in (fp32, int8)] == ["fp32", "int8"]


def test_a_runtime_without_int8_is_refused_with_the_reason(collector: Harness):
    before = collector.dump()
    response = collector.admin.post(
        "/admin/campaigns", json={"space": "nb201", "archs": ARCHS[:1], "runtime": "torch", "precision": "int8"}
    )
    assert response.status_code == 422
    assert "precision int8 is not supported by runtime torch" in response.json()["message"]
    unknown = collector.admin.post(
        "/admin/campaigns", json={"space": "nb201", "archs": ARCHS[:1], "runtime": "coreml", "precision": "int8"}
    )
    assert unknown.status_code == 422 and "precision int8 needs a runtime this collector knows" in unknown.text
    assert collector.dump() == before
