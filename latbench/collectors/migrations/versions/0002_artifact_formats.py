"""Artifact formats: each artifact and campaign names the format its runtime loads (``onnx`` for existing rows).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("artifacts", "campaigns"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("format", sa.String(16), nullable=False, server_default="onnx"))


def downgrade() -> None:
    for table in ("campaigns", "artifacts"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("format")
