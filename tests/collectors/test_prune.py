"""Pruning artifact files: a finished or cancelled campaign's go from the store and the artifacts directory, a running
one's stay, results keep naming theirs, and an artifact asked for again is built again with the same bytes; the
artifacts directory keeps to its size by evicting the least recently used files. Real collectors over HTTP, on
SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from latbench.artifacts import OPSET, REFERENCE_KEY, ArtifactKey
from latbench.collectors import blobs, prune
from latbench.collectors.db import Store, utcnow
from latbench.collectors.models import ArtifactRow
from tests.support.ports import free_port
from tests.support.processes import ADMIN_TOKEN, LATBENCH, Agent, Collector, env, totals, wait_for
from tests.support.served import ARCHS, Clock, Harness, Served, measurement


def _key(arch: str) -> ArtifactKey:
    return ArtifactKey("nb201", arch, 1, 32, 10, OPSET, 0)


@pytest.fixture
def artifacts(tmp_path: Path, artifact_cache: Path) -> Path:
    """An artifacts directory of the test's own (pruning deletes from it), holding what the session's cache has
    built of the test networks, so that they are not exported again."""
    root = tmp_path / "artifacts"
    root.mkdir()
    for key in [REFERENCE_KEY, *map(_key, ARCHS)]:
        for name in (f"{key.digest()}.onnx", f"{key.digest()}.json"):
            if (artifact_cache / name).is_file():
                shutil.copy2(artifact_cache / name, root / name)
    return root


def _finish(collector: Harness, agent: httpx.Client, jobs: int) -> list[dict[str, Any]]:
    """Lease ``jobs`` jobs with ``agent`` and push a result for each."""
    leased = agent.post("/leases", json={"max_jobs": jobs}).json()["jobs"]
    assert len(leased) == jobs
    response = agent.post("/results", json={"results": [measurement(job) for job in leased]})
    assert response.status_code == 200, response.text
    return leased


def _sha(store: Store, key: ArtifactKey) -> str:
    with store.read() as session:
        sha256 = session.scalar(sa.select(ArtifactRow.sha256).where(ArtifactRow.key_digest == key.digest()))
    assert sha256 is not None
    return sha256


def _held(store: Store, sha256: str) -> bool:
    with store.read() as session:
        return blobs.held(session, sha256)


def _download(agent: httpx.Client, sha256: str, timeout_s: float = 180.0) -> bytes:
    """The artifact's bytes, asking again while the collector answers 503 ``artifact_rebuilding`` (as agents do)."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = agent.get(f"/artifacts/{sha256}")
        if response.status_code != 503:
            assert response.status_code == 200, response.text
            assert hashlib.sha256(response.content).hexdigest() == sha256
            return response.content
        assert response.json()["code"] == "artifact_rebuilding", response.text
        assert time.monotonic() < deadline, "the pruned artifact was not built again in time"
        time.sleep(0.2)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LATBENCH, "collector", "prune", *args], capture_output=True, text=True, env=env(),
                          timeout=300)  # fmt: skip


@pytest.mark.slow  # the command in a process of its own
def test_prune_frees_a_finished_campaigns_files_and_keeps_a_running_ones(db_url: str, artifacts: Path):
    with Served(db_url, artifacts, Clock()) as collector:
        done = collector.campaign(ARCHS[:3], devices=["dev-a"])
        leased = _finish(collector, collector.agent("agent-a", device="dev-a"), 3)
        running = collector.campaign(ARCHS[2:], devices=["dev-b"])
        store = collector.store
        shas = {arch: _sha(store, _key(arch)) for arch in ARCHS}
        gone = [_key(arch).digest() for arch in ARCHS[:2]]
        sizes = sum((artifacts / f"{digest}.onnx").stat().st_size for digest in gone)
        before = collector.dump()

        dry = _cli("--db", db_url, "--artifacts-dir", str(artifacts), "--dry-run", "--json")
        assert dry.returncode == 0, dry.stderr
        assert json.loads(dry.stdout) == {
            "dry_run": True, "campaigns": 1, "artifacts": 2, "store_bytes": sizes, "cache_files": 4,
            "cache_bytes": sizes + sum((artifacts / f"{d}.json").stat().st_size for d in gone), "kept_uploads": 0,
            "kept_upload_bytes": 0, "artifacts_dirs": [str(artifacts)],
        }  # fmt: skip
        assert dry.stderr.startswith(f"would free 2 artifact file(s), {sizes / 1e6:.1f} MB in the store")
        assert collector.dump() == before and all(_held(store, sha) for sha in shas.values())
        assert all((artifacts / f"{digest}.onnx").is_file() for digest in gone)

        pruned = _cli("--db", db_url, "--artifacts-dir", str(artifacts), "--json")
        assert pruned.returncode == 0, pruned.stderr
        assert json.loads(pruned.stdout)["artifacts"] == 2 and json.loads(pruned.stdout)["store_bytes"] == sizes
        assert pruned.stderr.startswith(f"freed 2 artifact file(s), {sizes / 1e6:.1f} MB in the store and 4 file(s), ")
        assert [_held(store, shas[arch]) for arch in ARCHS] == [False, False, True, True, True]
        assert not [path for path in artifacts.iterdir() if path.name.split(".")[0] in gone]
        assert _held(store, _sha(store, REFERENCE_KEY))

        rows = [json.loads(line) for line in collector.admin.get(f"/admin/campaigns/{done}/results").text.splitlines()]
        assert sorted(row["artifact_sha256"] for row in rows) == sorted(job["artifact_sha256"] for job in leased)
        assert collector.status(done)["state"] == "done"
        agent = collector.agent("agent-b", device="dev-b")
        jobs = agent.post("/leases", json={"max_jobs": 3}).json()["jobs"]
        assert [job["arch"] for job in jobs] == ARCHS[2:] and collector.status(running)["state"] == "running"
        assert _download(agent, jobs[0]["artifact_sha256"], timeout_s=0) and _download(
            agent, jobs[1]["reference_sha256"]
        )

        again = _cli("--db", db_url, "--artifacts-dir", str(artifacts), "--json")
        assert json.loads(again.stdout)["artifacts"] == 0 and json.loads(again.stdout)["cache_files"] == 0


@pytest.mark.slow  # a collector and agent processes
def test_an_agent_measures_a_new_campaign_on_a_pruned_campaigns_networks(db_url: str, artifacts: Path, tmp_path: Path):
    """A second agent (its own download cache) is leased the new campaign's jobs, perhaps before the builder has
    made their files again (503: it waits), and measures them on the same bytes."""
    collector = Collector(db_url, tmp_path / "data", free_port(), 30, artifacts).start()
    fast = ["--runtime", "onnxruntime", "--min-runs", "10", "--min-time", "0.05", "--warmup-time", "0.02"]
    chosen = [option for arch in ARCHS[:2] for option in ("--arch", arch)]
    agents: list[Agent] = []
    try:
        token = collector.cli("token", "create", "--name", "prune")
        first = collector.cli("campaign", "create", "--space", "nb201", *chosen, *fast)
        agents.append(Agent(collector, token, "agent-1", tmp_path / "agent-1", "--max-jobs", "1"))
        wait_for(lambda: totals(collector.status(first))["done"] == 2, 240, "the first campaign's results")
        assert agents[0].stop() == 0
        pruned = _cli("--db", db_url, "--artifacts-dir", str(artifacts), "--json")
        assert pruned.returncode == 0 and json.loads(pruned.stdout)["artifacts"] == 2, pruned.stderr
        second = collector.cli("campaign", "create", "--space", "nb201", *chosen, *fast)
        agents.append(Agent(collector, token, "agent-2", tmp_path / "agent-2", "--max-jobs", "2"))
        wait_for(lambda: totals(collector.status(second))["done"] == 2, 240, "the second campaign's results")
        assert agents[1].stop() == 0
        shas = [
            sorted(json.loads(line)["artifact_sha256"] for line in httpx.get(
                f"{collector.url}/v1/admin/campaigns/{campaign}/results", timeout=30,
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).text.splitlines())
            for campaign in (first, second)
        ]  # fmt: skip
        assert shas[0] == shas[1] and len(shas[0]) == 2
    finally:
        for agent in agents:
            agent.stop()
        collector.stop()


def test_a_pruned_artifact_a_new_campaign_measures_is_built_again_with_the_same_bytes(db_url: str, artifacts: Path):
    """The collector that leased the first campaign's jobs leases the new one's at once (it knows the artifact as
    built): the agent's download is answered 503 until the builder has made the file again."""
    with Served(db_url, artifacts, Clock()) as collector:
        collector.campaign(ARCHS[:1], devices=["dev-a"])
        [job] = _finish(collector, collector.agent("agent-a", device="dev-a"), 1)
        done = prune.prune(collector.store, utcnow(), [artifacts])
        assert (done.artifacts, done.cache_files) == (1, 2) and not _held(collector.store, job["artifact_sha256"])

        collector.campaign(ARCHS[:1], devices=["dev-c"], wait=False)
        agent = collector.agent("agent-c", device="dev-c")
        [again] = agent.post("/leases", json={"max_jobs": 1}).json()["jobs"]
        assert again["artifact_sha256"] == job["artifact_sha256"]
        _download(agent, again["artifact_sha256"])
        assert _held(collector.store, job["artifact_sha256"])
        assert prune.prune(collector.store, utcnow(), [artifacts]).artifacts == 0  # a running campaign's again


def test_a_live_campaigns_artifact_a_racing_prune_took_is_built_again_on_download(db_url: str, artifacts: Path):
    """What a prune leaves when a campaign measuring the same file commits while its statement runs (PostgreSQL):
    the campaign's file gone from the store and the directory. The agent's download asks for it again."""
    with Served(db_url, artifacts, Clock()) as collector:
        collector.campaign(ARCHS[1:2])
        agent = collector.agent("agent-d")
        [job] = agent.post("/leases", json={"max_jobs": 1}).json()["jobs"]
        sha256 = job["artifact_sha256"]
        with collector.store.write() as session:
            session.execute(sa.update(ArtifactRow).where(ArtifactRow.sha256 == sha256).values(file_name=None))
            blobs.delete_files(session, [sha256])
        (artifacts / f"{_key(ARCHS[1]).digest()}.onnx").unlink()
        refused = agent.get(f"/artifacts/{sha256}")
        assert refused.status_code == 503 and "was pruned; the collector is building it again" in refused.text
        _download(agent, sha256)


def test_uploaded_files_are_kept_unless_asked_and_a_pruned_one_is_uploaded_again(
    db_url: str, artifacts: Path, conv_model: Path
):
    content = conv_model.read_bytes()
    sha256 = hashlib.sha256(content).hexdigest()
    with Served(db_url, artifacts, Clock()) as collector:
        assert collector.admin.put(f"/admin/models/{sha256}", content=content).status_code == 201
        created = collector.admin.post("/admin/campaigns", json={"models": [{"name": "conv", "sha256": sha256}]})
        assert created.status_code == 201, created.text
        collector.wait_built(created.json()["campaign_id"])  # the reference model
        agent = collector.agent("agent-u")
        _finish(collector, agent, 1)

        kept = prune.prune(collector.store, utcnow(), [artifacts])
        assert (kept.artifacts, kept.kept_uploads, kept.kept_upload_bytes) == (0, 1, len(content))
        assert "kept 1 uploaded model file(s)" in kept.summary() and _held(collector.store, sha256)

        dry = prune.prune(collector.store, utcnow(), [artifacts], uploads=True, dry_run=True)
        assert (dry.artifacts, dry.store_bytes, dry.cache_files) == (1, len(content), 1)
        assert _held(collector.store, sha256)
        pruned = prune.prune(collector.store, utcnow(), [artifacts], uploads=True)
        assert (pruned.artifacts, pruned.store_bytes, pruned.cache_files) == (1, len(content), 1)
        assert not (artifacts / "models" / f"{sha256}.onnx").exists()
        assert collector.admin.get(f"/admin/models/{sha256}").status_code == 404
        refused = agent.get(f"/artifacts/{sha256}")
        assert refused.status_code == 404 and "pruned from the collector" in refused.json()["message"]
        assert "upload it again" in refused.json()["message"]

        assert collector.admin.put(f"/admin/models/{sha256}", content=content).status_code == 201
        assert collector.admin.get(f"/admin/models/{sha256}").status_code == 200
        assert _download(agent, sha256) == content


def test_a_cancelled_campaigns_files_go_once_no_lease_of_theirs_runs(
    db_url: str, artifacts: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(prune, "BATCH_BYTES", 1)  # a transaction per file
    with Served(db_url, artifacts, Clock()) as collector:
        cancelled = collector.campaign(ARCHS[3:5])
        agent = collector.agent("agent-x")
        [job] = agent.post("/leases", json={"max_jobs": 1}).json()["jobs"]
        assert collector.admin.post(f"/admin/campaigns/{cancelled}/cancel").status_code == 200
        assert prune.prune(collector.store, utcnow(), [artifacts]).artifacts == 0  # its agent may be downloading

        assert agent.post("/results", json={"results": [measurement(job)]}).status_code == 200
        done = prune.prune(collector.store, utcnow(), [artifacts])
        assert (done.campaigns, done.artifacts) == (1, 2)  # the one measured and the one never leased
        assert not any(_held(collector.store, _sha(collector.store, _key(arch))) for arch in ARCHS[3:5])


def test_a_replica_drops_pruned_files_from_its_directory(db_url: str, artifacts: Path, tmp_path: Path):
    """A prune that was given no artifacts directory (PostgreSQL, replicas on other hosts): each replica's builder
    removes the pruned files from its own directory, at its start and every 10 minutes."""
    with Served(db_url, artifacts, Clock()) as collector:
        collector.campaign(ARCHS[:1], devices=["dev-a"])
        _finish(collector, collector.agent("agent-a", device="dev-a"), 1)
        assert prune.prune(collector.store, utcnow()).cache_files == 0
        digest = _key(ARCHS[0]).digest()
        assert (artifacts / f"{digest}.onnx").is_file()
        with Served(db_url, artifacts, Clock()):
            deadline = time.monotonic() + 30
            while (artifacts / f"{digest}.onnx").exists():
                assert time.monotonic() < deadline, "the replica kept the pruned file"
                time.sleep(0.05)
        assert not (artifacts / f"{digest}.json").exists()
        assert (artifacts / f"{REFERENCE_KEY.digest()}.onnx").is_file()


@pytest.mark.slow  # two served collectors
def test_the_artifacts_directory_keeps_to_its_size_evicting_the_least_recently_used(
    db_url: str, artifacts: Path, tmp_path: Path
):
    second = tmp_path / "second"
    with Served(db_url, artifacts, Clock()) as first:
        first.campaign(ARCHS[:3])
        shas = [_sha(first.store, _key(arch)) for arch in ARCHS[:3]]
        sizes = [(artifacts / f"{_key(arch).digest()}.onnx").stat().st_size for arch in ARCHS[:3]]
        cap = sizes[0] + sizes[2] + min(sizes[1], 1024) // 2
        with Served(db_url, second, Clock(), artifact_cache_bytes=cap) as replica:
            agent = replica.agent("agent-r")
            _download(agent, shas[0], timeout_s=0)
            _download(agent, shas[1], timeout_s=0)
            files = {p.name: p for p in second.iterdir()}
            old, older = time.time() - 300, time.time() - 600
            os.utime(files[f"{_key(ARCHS[0]).digest()}.onnx"], (older, older))  # used first, then again below
            os.utime(files[f"{_key(ARCHS[1]).digest()}.onnx"], (old, old))
            _download(agent, shas[0], timeout_s=0)
            _download(agent, shas[2], timeout_s=0)
            assert sorted(p.name for p in second.iterdir()) == sorted(
                f"{_key(a).digest()}.onnx" for a in (ARCHS[0], ARCHS[2])
            )
            assert _download(agent, shas[1], timeout_s=0)  # evicted here, still in the store


@pytest.mark.slow  # the command in processes of its own
def test_prune_refuses_bad_input_in_one_line(tmp_path: Path):
    both = _cli("--data-dir", str(tmp_path), "--db", f"sqlite:///{tmp_path / 'x.sqlite'}")
    assert both.returncode == 2 and "give --data-dir or --db, not both" in both.stderr
    missing = _cli("--data-dir", str(tmp_path / "nothing"))
    assert missing.returncode == 1 and missing.stderr.strip().splitlines() == [
        f"error: no collector store at {tmp_path / 'nothing' / 'collector.sqlite'}"
    ]
    assert not (tmp_path / "nothing").exists()
    serve = subprocess.run([*LATBENCH, "collector", "serve", "--artifact-cache-mb", "0", "--data-dir", str(tmp_path)],
                           capture_output=True, text=True, env=env(), timeout=120)  # fmt: skip
    assert serve.returncode == 2 and "--artifact-cache-mb" in serve.stderr


def test_the_cache_evicts_by_last_use_and_spares_recent_files(tmp_path: Path):
    now = time.time()
    for name, age_s, size in [("a.onnx", 900, 400), ("b.onnx", 600, 400), ("models/c.onnx", 300, 400),
                              ("d.json", 30, 400), (".x.onnx.1.tmp", 900, 400)]:  # fmt: skip
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"x" * size)
        os.utime(path, (now - age_s, now - age_s))
    assert sorted(p.name for p in blobs.evict(tmp_path, 900)) == ["a.onnx", "b.onnx"]
    assert sorted(p.relative_to(tmp_path).as_posix() for p in blobs.cached(tmp_path)) == ["d.json", "models/c.onnx"]
    assert blobs.evict(tmp_path, 1) == [tmp_path / "models" / "c.onnx"]  # d.json was used in the last minute
