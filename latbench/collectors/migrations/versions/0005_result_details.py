"""Result details: the load and first-run times, the peak resident memory, what ``--wait-idle`` waited and the
load it saw, and the per-operator profile (gzip-compressed JSON, ``latbench.profiles.encode``). Results of an
older store have none of them (NULL).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

FLOATS = ("load_ms", "first_run_ms", "peak_rss_mb", "idle_waited_s", "idle_load")


def upgrade() -> None:
    with op.batch_alter_table("results") as batch:
        for name in FLOATS:
            batch.add_column(sa.Column(name, sa.Float(), nullable=True))
        batch.add_column(sa.Column("profile", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("results") as batch:
        for name in ("profile", *reversed(FLOATS)):
            batch.drop_column(name)
