"""How fast a collector's storage grows with artifacts, and what pruning gives back: sampled NB201 and FBNet networks
exported to ONNX (batch 1, the spaces' default resolution and classes), stored in a fresh collector store the way
the builder stores them (``blobs.put``, 1 MiB chunks), then deleted again as ``latbench collector prune`` does.

Printed per space: the artifact file's bytes (mean, min, max) and its manifest's, the store's growth per artifact
(SQLite: the database file after a checkpoint; PostgreSQL with ``--postgres``: ``artifact_blobs`` with its TOAST
table), the whole NB201 space (15,625 cells) or 10,000 FBNet networks at that rate (a replica's artifacts directory
holds as much, up to its ``--artifact-cache-mb``), how long deleting them takes, and the store's size once they
are deleted, before and after ``VACUUM`` (deleted pages are reused, not returned, until then).

    python benchmarks/artifact_growth.py                    # 8 networks of each space, SQLite
    python benchmarks/artifact_growth.py --samples 20 --postgres
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tests.support starts PostgreSQL

from latbench.artifacts import OPSET, ArtifactCache, ArtifactKey
from latbench.collectors import blobs
from latbench.collectors.db import Store
from latbench.collectors.migrations import upgrade
from latbench.spaces import get_space

WHOLE = {"nb201": 15_625, "fbnet": 10_000}
"""How many networks the extrapolation counts: the whole NB201 space, and a large FBNet sample."""


def _on_driver(store: Store, statement: str) -> object:
    """Run ``statement`` on a driver connection outside any transaction (``VACUUM`` refuses one); its value."""
    raw = store.engine.raw_connection()
    try:
        driver = raw.driver_connection
        assert driver is not None
        if store.engine.dialect.name == "postgresql":
            driver.autocommit = True  # type: ignore[attr-defined]
        cursor = driver.execute(statement)  # type: ignore[attr-defined]
        row = cursor.fetchone() if cursor.description else None
        return row[0] if row else None
    finally:
        raw.invalidate()


def _store_bytes(store: Store) -> int:
    """The store's size: the SQLite file after a checkpoint, or PostgreSQL's ``artifact_blobs`` with its TOAST."""
    if store.engine.dialect.name == "postgresql":
        return int(str(_on_driver(store, "SELECT pg_total_relation_size('artifact_blobs')")))
    _on_driver(store, "PRAGMA wal_checkpoint(TRUNCATE)")
    return Path(str(store.engine.url.database)).stat().st_size


def _vacuum(store: Store) -> None:
    _on_driver(store, "VACUUM FULL artifact_blobs" if store.engine.dialect.name == "postgresql" else "VACUUM")


@contextlib.contextmanager
def _stores(folder: Path, postgres: bool) -> Iterator[dict[str, str]]:
    urls = {"sqlite": f"sqlite:///{folder / 'collector.sqlite'}"}
    if not postgres:
        yield urls
        return
    from tests.support.postgres import create_database, postgres_server

    with postgres_server() as server:
        yield {**urls, "postgresql": create_database(server, "growth")}


def _measure(space_name: str, samples: int, seed: int, folder: Path, urls: dict[str, str]) -> None:
    space = get_space(space_name)
    cache = ArtifactCache(folder / space_name)
    built = []
    started = time.perf_counter()
    for arch in space.sample(samples, seed):
        built.append(cache.build(ArtifactKey(space.name, arch, 1, space.default_resolution, space.default_classes,
                                             OPSET, 0)))  # fmt: skip
    export_s = (time.perf_counter() - started) / samples
    sizes = [artifact.path.stat().st_size for artifact in built]
    manifests = statistics.mean(artifact.path.with_suffix(".json").stat().st_size for artifact in built)
    print(f"{space_name}: {samples} networks, ONNX file {statistics.mean(sizes) / 1e6:.2f} MB mean "
          f"({min(sizes) / 1e6:.2f}-{max(sizes) / 1e6:.2f}), manifest {manifests:.0f} B, "
          f"export {export_s:.1f} s each")  # fmt: skip
    for name, url in urls.items():
        store = Store(url)
        try:
            upgrade(store.engine)
            before = _store_bytes(store)
            for artifact in built:
                with store.write() as session:
                    blobs.put(session, artifact.sha256, artifact.path)
            grown = (_store_bytes(store) - before) / samples
            started = time.perf_counter()
            with store.write() as session:
                blobs.delete_files(session, [artifact.sha256 for artifact in built])
            delete_s = time.perf_counter() - started
            deleted = _store_bytes(store)
            _vacuum(store)
            vacuumed = _store_bytes(store)
        finally:
            store.close()
        print(f"  {name}: +{grown / 1e6:.2f} MB per artifact in the store ({grown / statistics.mean(sizes):.3f} x the "
              f"file); {WHOLE[space_name]:,} networks: {grown * WHOLE[space_name] / 1e9:.1f} GB; deleted in "
              f"{delete_s:.2f} s, leaving {deleted / 1e6:.1f} MB, {vacuumed / 1e6:.1f} MB after VACUUM (from "
              f"{before / 1e6:.1f} MB)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=8, help="Networks sampled per space.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--postgres", action="store_true", help="Measure a PostgreSQL store too (starts a server).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, _stores(Path(tmp), args.postgres) as urls:
        for space in WHOLE:
            _measure(space, args.samples, args.seed, Path(tmp), urls)


if __name__ == "__main__":
    main()
