"""Adaptive campaigns: each stopped device keeps the acquisition's caveat (it was a fixed text per stop, which
could not say that a target stop went unverified). Devices stopped before keep the caveat they showed.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SHORT_OF_TARGET = "the target was not reached, so the estimate never settled: it is rough, as wide as its ± says"
"""The caveat the status showed for a ``budget`` or ``exhausted`` stop up to 0007 (a copy: a migration keeps the
words of its time)."""


def upgrade() -> None:
    with op.batch_alter_table("adaptive_devices") as batch:
        batch.add_column(sa.Column("caveat", sa.Text(), nullable=True))
    op.execute(
        sa.text("UPDATE adaptive_devices SET caveat = :caveat WHERE stop IN ('budget', 'exhausted')").bindparams(
            caveat=SHORT_OF_TARGET
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("adaptive_devices") as batch:
        batch.drop_column("caveat")
