"""Alembic's entry point: migrates over the connection that ``upgrade`` opened (no ini file, no URL here)."""

from __future__ import annotations

from alembic import context

from latbench.collectors.models import Base

context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=Base.metadata,
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
