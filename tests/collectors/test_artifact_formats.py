"""Artifact formats: a campaign's artifacts and its reference model are built, stored and served in the format
its runtime loads (here LiteRT, converted for real), and an unknown runtime keeps ONNX."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import select

from latbench.artifacts import OPSET, REFERENCE_KEY, ArtifactCache, ArtifactKey
from latbench.collectors.models import ArtifactRow, CampaignRow
from tests.support.served import ARCHS, Harness

TFLITE_OFFER = [{"name": "tflite", "version": "1.4.0", "providers": ["cpu"]}]
TFLITE_ARCH = ARCHS[4]
"""The cell the tflite tests convert; the e2e tflite campaign uses it too, so the session's cache converts it once."""


@pytest.mark.slow  # LiteRT conversion
def test_a_tflite_campaign_builds_stores_and_serves_tflite_artifacts(collector: Harness, artifact_cache: Path):
    campaign = collector.campaign([TFLITE_ARCH], runtime="tflite", wait=False)
    collector.wait_built(campaign, timeout_s=300)
    assert collector.status(campaign)["state"] == "running"
    assert collector.agent("ort-only").post("/leases", json={"max_jobs": 4}).json()["jobs"] == []
    agent = collector.agent("litert", runtimes=TFLITE_OFFER)
    [job] = agent.post("/leases", json={"max_jobs": 4}).json()["jobs"]
    assert job["runtime"] == "tflite" and job["artifact_format"] == "tflite" and job["arch"] == TFLITE_ARCH

    cache = ArtifactCache(artifact_cache)
    key = ArtifactKey("nb201", TFLITE_ARCH, 1, 32, 10, OPSET, 0)
    built, reference = cache.get(key, "tflite"), cache.get(REFERENCE_KEY, "tflite")
    assert built is not None and reference is not None
    assert built.path.suffix == ".tflite" and (job["artifact_sha256"], job["reference_sha256"]) == (
        built.sha256,
        reference.sha256,
    )
    for sha in (job["artifact_sha256"], job["reference_sha256"]):
        response = agent.get(f"/artifacts/{sha}")
        assert response.status_code == 200
        assert hashlib.sha256(response.content).hexdigest() == sha and response.content[4:8] == b"TFL3"
    assert job["artifact_bytes"] == built.path.stat().st_size

    with collector.store.read() as session:
        assert session.scalar(select(CampaignRow.format).where(CampaignRow.id == campaign)) == "tflite"
        rows = {row.key_digest: row for row in session.scalars(select(ArtifactRow))}
    assert rows[key.digest("tflite")].format == "tflite" and rows[key.digest("tflite")].sha256 == built.sha256
    assert rows[REFERENCE_KEY.digest("tflite")].file_name == reference.path.name
    assert rows[REFERENCE_KEY.digest()].format == "onnx"  # the collector's own reference, requested at start


def test_a_campaign_of_a_runtime_the_collector_does_not_know_gets_onnx(collector: Harness):
    campaign = collector.campaign(ARCHS[:1], runtime="coreml")
    agent = collector.agent("mac", runtimes=[{"name": "coreml", "version": "8", "providers": ["cpu"]}])
    [job] = agent.post("/leases", json={}).json()["jobs"]
    assert job["artifact_format"] == "onnx"
    response = agent.get(f"/artifacts/{job['artifact_sha256']}")
    assert response.status_code == 200 and b"onnx" in response.content[:64].lower()
    with collector.store.read() as session:
        assert session.scalar(select(CampaignRow.format).where(CampaignRow.id == campaign)) == "onnx"
