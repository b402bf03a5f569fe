"""The store's schema: migrations create exactly the models' tables, applying them again changes nothing, and a
store of an older revision upgrades with its rows kept."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from latbench.collectors.db import Store
from latbench.collectors.migrations import upgrade
from latbench.collectors.models import Base


def campaign(now: datetime) -> dict[str, object]:
    """A campaign row as every revision accepts it."""
    return {"id": "c1", "space": "nb201", "seed": 0, "samples": 1, "runtime": "onnxruntime", "provider": "cpu",
            "batch": 1, "threads": 1, "resolution": 32, "classes": 10, "opset": 17, "settings": "{}", "devices": "[]",
            "max_failures": 3, "created_at": now}  # fmt: skip


@contextlib.contextmanager
def store_at(db_url: str, revision: str = "head") -> Iterator[Store]:
    """The store at ``db_url`` migrated to ``revision``, closed afterwards."""
    store = Store(db_url)
    try:
        upgrade(store.engine, revision)
        yield store
    finally:
        store.close()


def insert(store: Store, rows: list[tuple[str, dict[str, object]]]) -> None:
    with store.engine.begin() as conn:
        for table, row in rows:
            conn.execute(sa.text(f"INSERT INTO {table} ({', '.join(row)}) VALUES (:{', :'.join(row)})"), row)


def test_migrations_match_the_models_and_are_idempotent(db_url: str):
    with store_at(db_url) as store:
        upgrade(store.engine)
        with store.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_0002_upgrades_a_0001_store_whose_rows_become_onnx(db_url: str):
    with store_at(db_url, "0001") as store:
        now = datetime.now(timezone.utc)
        artifact = {"key_digest": "a" * 64, "space": "nb201", "arch": "|none~0|", "batch": 1, "resolution": 32,
                    "classes": 10, "opset": 17, "seed": 0, "requested_at": now, "sha256": "b" * 64}  # fmt: skip
        insert(store, [("artifacts", artifact), ("campaigns", campaign(now))])
        upgrade(store.engine)
        with store.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
            assert conn.scalar(sa.text("SELECT format FROM artifacts")) == "onnx"
            assert conn.scalar(sa.text("SELECT format FROM campaigns")) == "onnx"
            assert conn.scalar(sa.text("SELECT sha256 FROM artifacts")) == "b" * 64


def test_0004_counts_the_jobs_an_older_store_created_for_each_membership(db_url: str):
    with store_at(db_url, "0002") as store:
        now = datetime.now(timezone.utc)
        rows = [
            ("artifacts", {"key_digest": "a" * 64, "space": "nb201", "arch": "|none~0|", "batch": 1, "resolution": 32,
                           "classes": 10, "opset": 17, "seed": 0, "requested_at": now}),
            ("campaigns", campaign(now)),
            ("campaign_archs", {"campaign_id": "c1", "position": 0, "arch": "|none~0|", "artifact_digest": "a" * 64}),
            ("devices", {"id": "d1", "name": "dev", "fingerprint": "0" * 16, "machine": "{}", "first_seen": now}),
            ("campaign_devices", {"campaign_id": "c1", "device_id": "d1", "joined_at": now}),
            ("jobs", {"id": "j1", "campaign_id": "c1", "device_id": "d1", "position": 0, "state": "queued",
                      "leases": 0, "errors": 0, "expirations": 0}),
        ]  # fmt: skip
        insert(store, rows)
        upgrade(store.engine)
        with store.engine.connect() as conn:
            assert conn.scalar(sa.text("SELECT created FROM campaign_devices")) == 1


def test_0008_keeps_the_caveat_each_stopped_adaptive_device_showed(db_url: str):
    with store_at(db_url, "0007") as store:
        now = datetime.now(timezone.utc)
        rows = [
            ("campaigns", campaign(now)),
            *[("devices", {"id": f"d{i}", "name": f"dev{i}", "fingerprint": f"{i}" * 16, "machine": "{}",
                           "first_seen": now}) for i in range(4)],
            *[("adaptive_devices", {"campaign_id": "c1", "device_id": f"d{i}", "state": state, "stop": stop,
                                    "seen": 20, "curve": "[]", "updated_at": now})
              for i, (state, stop) in enumerate([("stopped", "budget"), ("stopped", "target"), ("measuring", None),
                                                 ("stopped", "exhausted")])],
        ]  # fmt: skip
        insert(store, rows)
        upgrade(store.engine)
        with store.engine.connect() as conn:
            caveats = dict(conn.execute(sa.text("SELECT device_id, caveat FROM adaptive_devices")).all())
        short = "the target was not reached, so the estimate never settled: it is rough, as wide as its ± says"
        assert caveats == {"d0": short, "d1": None, "d2": None, "d3": short}
