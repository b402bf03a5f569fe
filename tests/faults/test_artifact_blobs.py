"""Artifacts live in the store: a collector replica with an artifacts directory of its own serves the files
another replica built or received, copying each into its directory once."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from latbench.artifacts import ArtifactCache
from tests.support.served import ARCHS, Clock, Served


@pytest.mark.slow  # two served collectors and an artifact build
def test_a_replica_serves_the_artifacts_and_uploads_another_replica_wrote(
    db_url: str, tmp_path: Path, artifact_cache: Path, conv_model: Path
):
    content = conv_model.read_bytes()
    uploaded = hashlib.sha256(content).hexdigest()
    clock = Clock()
    with Served(db_url, artifact_cache, clock) as first:  # builds, holding the build lock from here on
        assert first.admin.put(f"/admin/models/{uploaded}", content=content).status_code == 201
        first.campaign(ARCHS[:1])
        with Served(db_url, tmp_path / "second", clock) as second:
            agent = second.agent("elsewhere")
            [job] = agent.post("/leases", json={"max_jobs": 1}).json()["jobs"]
            for sha256 in (job["artifact_sha256"], job["reference_sha256"], uploaded):
                response = agent.get(f"/artifacts/{sha256}")
                assert response.status_code == 200, response.text
                assert hashlib.sha256(response.content).hexdigest() == sha256
            assert agent.get(f"/artifacts/{'0' * 64}").status_code == 404
    kept = {p.relative_to(tmp_path / "second").as_posix() for p in (tmp_path / "second").rglob("*") if p.is_file()}
    built = ArtifactCache(artifact_cache).find(job["artifact_sha256"])
    assert built is not None and built.path.name in kept and f"models/{uploaded}.onnx" in kept
    assert not [name for name in kept if name.endswith(".tmp")]
