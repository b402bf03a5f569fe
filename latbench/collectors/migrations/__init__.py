"""Alembic migrations of the collector's store, applied on every start so a new release upgrades its database."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from latbench.collectors.db import WRITE_OPTION

_ADVISORY_LOCK = 0x6C617462
"""PostgreSQL advisory lock held while migrating, so replicas starting together migrate one at a time."""


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the database at ``engine`` to the newest schema (or to ``revision``), in one transaction."""
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    with engine.execution_options(**{WRITE_OPTION: True}).begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
