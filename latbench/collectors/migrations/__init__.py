"""Alembic migrations of the collector's store, applied on every start so a new release upgrades its database.

Upgrades are one-way: no ``downgrade`` is offered, and a store at a revision this release does not know (a newer
latbench migrated it) is refused before anything touches it, rather than served with an idea of its schema that
no longer holds.
"""

from __future__ import annotations

import functools
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from latbench import __version__
from latbench.collectors.db import WRITE_OPTION
from latbench.errors import LatbenchError

_ADVISORY_LOCK = 0x6C617462
"""PostgreSQL advisory lock held while migrating, so replicas starting together migrate one at a time."""


class UnknownSchema(LatbenchError):
    """A store at a schema revision this release does not know: a newer latbench migrated it."""


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    return config


@functools.cache
def known_revisions() -> frozenset[str]:
    """Every revision this release's scripts define."""
    return frozenset(script.revision for script in ScriptDirectory.from_config(_config()).walk_revisions())


@functools.cache
def head() -> str:
    """The newest revision this release knows: the schema its code reads and writes."""
    return str(ScriptDirectory.from_config(_config()).get_current_head())


def revision(connection: sa.Connection) -> str | None:
    """The store's revision (``None`` for a store no migration has touched): one small read."""
    return MigrationContext.configure(connection).get_current_revision()


def unknown(found: str) -> UnknownSchema:
    """The refusal, in one line, of a store at ``found``, which this release does not know."""
    return UnknownSchema(
        f"the store is at schema revision {found}, which this latbench ({__version__}, schema up to {head()}) does "
        "not know: a newer latbench migrated it. Run that newer release on every replica, or restore a backup "
        "taken before the upgrade (upgrades are one-way)"
    )


def upgrade(engine: sa.Engine, target: str = "head") -> tuple[str | None, str | None]:
    """Bring the database at ``engine`` to the newest schema (or to ``target``), in one transaction; return the
    revisions before and after. ``UnknownSchema`` for a store a newer release migrated, which is left as it is."""
    config = _config()
    with engine.execution_options(**{WRITE_OPTION: True}).begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
        before = revision(connection)
        if before is not None and before not in known_revisions():
            raise unknown(before)
        config.attributes["connection"] = connection
        command.upgrade(config, target)
        return before, revision(connection)
