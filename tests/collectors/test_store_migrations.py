"""The store's schema: migrations create exactly the models' tables, and applying them again changes nothing."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from latbench.collectors.db import Store
from latbench.collectors.migrations import upgrade
from latbench.collectors.models import Base


def test_migrations_match_the_models_and_are_idempotent(db_url: str):
    store = Store(db_url)
    try:
        upgrade(store.engine)
        upgrade(store.engine)
        with store.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    finally:
        store.close()
