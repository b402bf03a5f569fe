"""Artifact files in the store: each file's bytes, in chunks, keyed by its SHA-256, so a collector replica on
another host serves artifacts it did not build (``latbench.collectors.blobs``).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "artifact_blobs",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", "part", name="pk_artifact_blobs"),
    )


def downgrade() -> None:
    op.drop_table("artifact_blobs")
