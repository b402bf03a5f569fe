"""What an interrupted process leaves behind: partial files in the artifacts directory are removed once stale,
and a lease let go of (its result pushed) while a heartbeat was on its way is not reported lost."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from latbench.agents.client import AgentClient
from latbench.agents.heartbeat import Heartbeat, Leases
from latbench.artifacts import ArtifactCache
from latbench.collectors import artifact_store
from latbench.collectors.db import Store, utcnow
from latbench.collectors.migrations import upgrade
from latbench.protocol import ResultItem
from tests.support.served import ARCHS, LEASE_TTL_S, Clock, Served, measurement


def test_the_builder_removes_partial_files_left_by_a_killed_writer_once_stale(tmp_path: Path):
    root = tmp_path / "artifacts"
    (root / "models").mkdir(parents=True)
    stale = [root / ".abc.onnx.k2j3.tmp", root / ".converting.x1y2", root / "models" / ".0123abcd.q9.part.onnx"]
    stale[0].touch()  # an empty staged file: the writer died before writing a byte
    stale[1].mkdir()
    (stale[1] / "half.tflite").write_bytes(b"TFL3")
    stale[2].write_bytes(b"\x08")
    fresh = root / ".def.onnx.z7.tmp"
    fresh.touch()
    kept = root / "abc.onnx"
    kept.write_bytes(b"model")
    hour_ago = time.time() - 3600
    for path in [*stale, kept]:
        os.utime(path, (hour_ago, hour_ago))

    store = Store(f"sqlite:///{tmp_path / 'collector.sqlite'}")
    upgrade(store.engine)
    builder = artifact_store.ArtifactBuilder(store, ArtifactCache(root), utcnow, idle_s=0.05)
    builder.start()
    try:
        deadline = time.monotonic() + 10
        while any(p.exists() for p in stale) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        builder.stop()
        store.close()
    assert [p for p in stale if p.exists()] == []
    assert fresh.exists() and kept.read_bytes() == b"model"  # one still being written, and a finished file


@pytest.mark.slow  # a served collector and its reference build
def test_a_lease_whose_result_was_pushed_during_a_heartbeat_is_not_reported_lost(
    tmp_path: Path, artifact_cache: Path, caplog: pytest.LogCaptureFixture
):
    clock = Clock()
    with Served(f"sqlite:///{tmp_path / 'collector.sqlite'}", artifact_cache, clock) as collector:
        token = collector.agent("beating", "bench").headers["Authorization"].removeprefix("Bearer ")
        collector.campaign(ARCHS[:2])
        with AgentClient(collector.url, token) as client:
            jobs = client.lease(2).jobs
            assert len(jobs) == 2
            leases = Leases()
            leases.add(job.lease_id for job in jobs)
            heartbeat = Heartbeat(client, leases, interval_s=3600)
            held = leases.active()  # the beat starts with both leases held...
            done, expired = jobs
            client.push([ResultItem.model_validate(measurement(done.model_dump(mode="json")))])
            leases.discard(done.lease_id)  # ...and meanwhile the agent finishes one and pushes its result
            clock.advance(LEASE_TTL_S + 1)  # while the other expires and goes to another agent
            [taken] = collector.agent("other", "bench").post("/leases", json={"max_jobs": 2}).json()["jobs"]
            assert taken["job_id"] == expired.job_id
            with caplog.at_level(logging.INFO, logger="latbench.agent"):
                heartbeat.beat(held)
    assert leases.is_lost(expired.lease_id) and not leases.is_lost(done.lease_id)
    assert [r.getMessage() for r in caplog.records if "lost" in r.getMessage()] == [
        f"lost 1 lease(s): {expired.lease_id}"
    ]
