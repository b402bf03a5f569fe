"""Artifact downloads: verified against their sha256, written whole or not at all, reused without the network."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from latbench.agents.client import AgentClient
from latbench.agents.downloads import DownloadCache
from latbench.errors import ArtifactError, CollectorRejected, CollectorUnavailable, LocalStorageError
from tests.agents.scripted_server import Reply, ScriptedServer

MODEL = os.urandom(300_000)
SHA = hashlib.sha256(MODEL).hexdigest()
PATH = f"/v1/artifacts/{SHA}"


@pytest.fixture
def server():
    with ScriptedServer() as s:
        yield s


def cache_for(url: str, directory, **kwargs) -> DownloadCache:
    return DownloadCache(directory, AgentClient(url, "tok"), **kwargs)


def test_a_download_is_verified_and_stored_under_its_hash(server, tmp_path):
    server.script(PATH, Reply(200, MODEL, "application/octet-stream"))
    path = cache_for(server.url, tmp_path).fetch(SHA, "onnx")
    assert path == tmp_path / f"{SHA}.onnx"
    assert path.read_bytes() == MODEL
    assert os.listdir(tmp_path) == [path.name]
    assert server.requests_to(PATH)[0].headers["Authorization"] == "Bearer tok"


def test_corrupted_bytes_are_rejected_and_nothing_is_left_behind(server, tmp_path):
    damaged = bytearray(MODEL)
    damaged[1000] ^= 0xFF
    server.script(PATH, Reply(200, bytes(damaged), "application/octet-stream"))
    with pytest.raises(ArtifactError, match=f"artifact {SHA} arrived with sha256"):
        cache_for(server.url, tmp_path).fetch(SHA, "onnx")
    assert os.listdir(tmp_path) == []


def test_a_torn_download_is_retryable_and_leaves_nothing(server, tmp_path):
    server.script(PATH, Reply(200, MODEL, "application/octet-stream", torn=True))
    with pytest.raises(CollectorUnavailable):
        cache_for(server.url, tmp_path).fetch(SHA, "onnx")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("undeclared", [False, True])
def test_an_artifact_over_its_declared_size_stops_before_it_is_written(server, tmp_path, undeclared):
    server.script(PATH, Reply(200, MODEL, "application/octet-stream", undeclared=undeclared))
    with pytest.raises(ArtifactError, match=f"artifact {SHA} .*over the 100000 bytes expected"):
        cache_for(server.url, tmp_path).fetch(SHA, "onnx", size=100_000)
    assert os.listdir(tmp_path) == []
    out = io.BytesIO()
    with pytest.raises(ArtifactError, match="over the 100000 bytes expected"):
        AgentClient(server.url, "tok").download(SHA, out, max_bytes=100_000)
    assert len(out.getvalue()) <= 100_000


def test_an_unknown_artifact_is_a_rejection(server, tmp_path):
    server.script(PATH, Reply.error(404, "artifact_not_found", "no such artifact"))
    with pytest.raises(CollectorRejected, match="no such artifact"):
        cache_for(server.url, tmp_path).fetch(SHA, "onnx")


def test_an_intact_cached_file_is_reused_without_the_network(server, tmp_path):
    server.script(PATH, Reply(200, MODEL, "application/octet-stream"))
    first = cache_for(server.url, tmp_path).fetch(SHA, "onnx")
    server.stop()
    assert cache_for(server.url, tmp_path).fetch(SHA, "onnx") == first
    assert len(server.requests) == 1


def test_a_damaged_cached_file_is_downloaded_again(server, tmp_path):
    server.script(PATH, Reply(200, MODEL, "application/octet-stream"))
    cache = cache_for(server.url, tmp_path)
    path = cache.fetch(SHA, "onnx")
    path.write_bytes(b"truncated")
    assert cache.fetch(SHA, "onnx").read_bytes() == MODEL
    assert len(server.requests) == 2


def test_partial_files_of_an_earlier_process_are_removed(tmp_path):
    (tmp_path / f".{SHA[:16]}.abc.part").write_bytes(b"half")
    cache_for("http://127.0.0.1:9", tmp_path)
    assert os.listdir(tmp_path) == []


def test_least_recently_used_artifacts_beyond_the_limit_are_pruned(server, tmp_path):
    models = [os.urandom(1000) for _ in range(3)]
    shas = [hashlib.sha256(m).hexdigest() for m in models]
    for sha, model in zip(shas, models):
        server.script(f"/v1/artifacts/{sha}", Reply(200, model, "application/octet-stream"))
    cache = cache_for(server.url, tmp_path, max_bytes=2500)
    for i, sha in enumerate(shas):
        path = cache.fetch(sha, "onnx")
        os.utime(path, (i, i))
    assert sorted(os.listdir(tmp_path)) == sorted(f"{sha}.onnx" for sha in shas[1:])


def test_a_disk_that_cannot_take_the_file_fails_the_agent_not_the_job(server, tmp_path, monkeypatch):
    """The agent's own disk is full: no job would fare better here, so the agent stops (``LocalStorageError``)
    rather than fail every job of its device one after another."""
    server.script(PATH, Reply(200, MODEL, "application/octet-stream"))

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(LocalStorageError, match=r"cannot store artifact .* No space left on device; free space there"):
        cache_for(server.url, tmp_path).fetch(SHA, "onnx")
    assert os.listdir(tmp_path) == []


def test_the_reference_model_is_bounded_though_no_size_is_declared_for_it():
    from latbench.agents.daemon import REFERENCE_MAX_BYTES, _declared_size
    from tests.agents.factories import job

    spec = job("j1", "1" * 64).model_copy(update={"reference_sha256": "2" * 64, "artifact_bytes": 123})
    assert _declared_size(spec, "1" * 64) == 123
    assert _declared_size(spec, "2" * 64) == REFERENCE_MAX_BYTES < 2**30
