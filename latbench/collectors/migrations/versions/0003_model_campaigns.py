"""Campaigns of model files: each model's input shapes by its name on the campaign, and the shapes a result was
timed with (``NULL`` for architectures).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("input_shapes", sa.JSON(), nullable=True))
    with op.batch_alter_table("results") as batch:
        batch.add_column(sa.Column("input_shapes", sa.Text(), nullable=True))


def downgrade() -> None:
    for table in ("results", "campaigns"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("input_shapes")
