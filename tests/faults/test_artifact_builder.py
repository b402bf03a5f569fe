"""The artifact builder through database faults, on a PostgreSQL server of the test's own that it crashes and
restarts: a finished artifact is recorded once the store is back, never failed, and a restart that ends the
builder's lock session never leaves two collectors building the same artifacts."""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Iterable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from latbench.artifacts import OPSET, REFERENCE_KEY, Artifact, ArtifactCache, ArtifactKey
from latbench.collectors import artifact_store
from latbench.collectors.db import Store, utcnow
from latbench.collectors.migrations import upgrade
from latbench.collectors.models import ArtifactRow
from latbench.errors import ArtifactError
from tests.support.postgres import Cluster, postgres_cluster
from tests.support.served import ARCHS

pytestmark = pytest.mark.slow  # a PostgreSQL server of its own, crashed and restarted; real exports

KEYS = [ArtifactKey("nb201", arch, 1, 32, 10, OPSET, 0) for arch in ARCHS[:3]]


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with postgres_cluster() as cluster:
        yield cluster


def rows(store: Store) -> list[ArtifactRow]:
    with store.read() as session:
        return list(session.scalars(select(ArtifactRow)))


def wait_built(store: Store, count: int, timeout_s: float) -> list[ArtifactRow]:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            found = rows(store)
            if sum(row.sha256 is not None for row in found) == count:
                return found
        except Exception:  # the server is still coming back
            pass
        assert time.monotonic() < deadline, f"artifacts not built: {[(r.arch, r.sha256, r.error) for r in found]}"
        time.sleep(0.1)


class CrashAfterFirstBuild(ArtifactCache):
    """A real cache; once its first build is done, the database crashes for ``outage_s`` before the builder can
    record it."""

    def __init__(self, root: Path, cluster: Cluster, outage_s: float) -> None:
        super().__init__(root)
        self.cluster, self.outage_s, self.crashed = cluster, outage_s, False

    def iter_build(
        self, keys: Iterable[ArtifactKey], fmt: str = "onnx"
    ) -> Generator[tuple[ArtifactKey, Artifact | ArtifactError], None, None]:
        for key, result in super().iter_build(keys, fmt):
            if not self.crashed:
                self.crashed = True
                self.cluster.stop()
                threading.Timer(self.outage_s, self.cluster.start).start()
            yield key, result


def test_a_database_crash_while_recording_an_artifact_is_waited_out_not_a_build_failure(
    cluster: Cluster, artifact_cache: Path
):
    store = Store(cluster.url)
    upgrade(store.engine)
    with store.write() as session:
        artifact_store.request(session, [REFERENCE_KEY, *KEYS[:1]], utcnow())
    builder = artifact_store.ArtifactBuilder(store, CrashAfterFirstBuild(artifact_cache, cluster, 2.0), utcnow, 0.2)
    builder.start()
    try:
        built = wait_built(store, 2, timeout_s=60)
    finally:
        builder.stop()
        store.close()
    assert builder.cache.crashed  # type: ignore[attr-defined]
    assert [row.error for row in built] == [None, None]
    assert {row.key_digest for row in built} == {REFERENCE_KEY.digest(), KEYS[0].digest()}


def test_after_a_database_restart_two_collectors_never_build_the_same_artifact(cluster: Cluster, tmp_path: Path):
    first, second = Store(cluster.url), Store(cluster.url)
    upgrade(first.engine)
    with first.write() as session:
        artifact_store.request(session, [REFERENCE_KEY], utcnow())
    roots = [tmp_path / "first", tmp_path / "second"]
    builders = [
        artifact_store.ArtifactBuilder(s, ArtifactCache(r), utcnow, 0.2) for s, r in zip((first, second), roots)
    ]
    builders[0].start()
    try:
        wait_built(first, 1, timeout_s=60)  # the first owns the builds
        builders[1].start()
        time.sleep(0.5)
        cluster.restart()  # both lose their connections; the first its lock session
        deadline = time.monotonic() + 30
        while True:
            try:
                with first.write() as session:
                    artifact_store.request(session, KEYS, utcnow())
                break
            except Exception:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        for builder in builders:
            builder.wake()
        built = wait_built(first, 1 + len(KEYS), timeout_s=90)
    finally:
        for builder in builders:
            builder.stop()
        first.close()
        second.close()
    assert all(row.error is None for row in built)
    for key in KEYS:
        places = [root for root in roots if (root / f"{key.digest()}.onnx").exists()]
        assert len(places) == 1, f"{key.arch} built in {places}"
