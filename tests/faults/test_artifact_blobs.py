"""Artifacts live in the store: a collector replica with an artifacts directory of its own serves the files
another replica built or received, copying each into its directory once."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from latbench.artifacts import ArtifactCache
from latbench.collectors import artifact_store, blobs
from latbench.collectors.db import Store, utcnow
from latbench.collectors.migrations import upgrade
from latbench.collectors.models import ArtifactRow
from latbench.errors import NotFound
from tests.support.served import ARCHS, Clock, Served


def held(store: Store, sha256: str) -> bool:
    with store.read() as session:
        return blobs.held(session, sha256)


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


def test_artifacts_recorded_before_the_store_kept_files_are_copied_in_by_the_builder(tmp_path: Path, conv_model: Path):
    root, elsewhere = tmp_path / "artifacts", tmp_path / "elsewhere"
    root.mkdir()
    content = conv_model.read_bytes()
    sha256 = hashlib.sha256(content).hexdigest()
    (root / "old.onnx").write_bytes(content)
    (root / "damaged.onnx").write_bytes(content[:-1])
    store = Store(f"sqlite:///{tmp_path / 'collector.sqlite'}")
    upgrade(store.engine, "0004")
    now = utcnow()
    rows = [{"key_digest": name * 64, "space": "nb201", "arch": name, "batch": 1, "resolution": 32, "classes": 10,
             "opset": 17, "seed": 0, "requested_at": now, "sha256": sha, "file_name": f"{file}.onnx", "size": 1}
            for name, sha, file in (("a", sha256, "old"), ("b", "f" * 64, "damaged"))]  # fmt: skip
    with store.write() as session:
        session.execute(sa.insert(ArtifactRow), rows)
    upgrade(store.engine)
    builder = artifact_store.ArtifactBuilder(store, ArtifactCache(root), utcnow, idle_s=0.05)
    builder.start()
    try:
        deadline = time.monotonic() + 10
        while not held(store, sha256) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        builder.stop()
    with store.read() as session:
        served = artifact_store.artifact_path(session, sha256, elsewhere)
        assert served.read_bytes() == content
        with pytest.raises(NotFound):
            artifact_store.artifact_path(session, "f" * 64, elsewhere)  # its file here no longer hashes right
    store.close()
