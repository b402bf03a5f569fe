"""Adaptive campaigns: a campaign's plan (target SRCC, budget, batch), and per device its acquisition state and
learning curve.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("adaptive", sa.JSON(), nullable=True))
    op.create_table(
        "adaptive_devices",
        sa.Column("campaign_id", sa.String(32), nullable=False),
        sa.Column("device_id", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("stop", sa.String(16), nullable=True),
        sa.Column("seen", sa.Integer(), nullable=False),
        sa.Column("curve", sa.JSON(), nullable=False),
        sa.Column("model", sa.String(256), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name="fk_adaptive_devices_campaign_id"),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], name="fk_adaptive_devices_device_id"),
        sa.PrimaryKeyConstraint("campaign_id", "device_id", name="pk_adaptive_devices"),
    )


def downgrade() -> None:
    op.drop_table("adaptive_devices")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("adaptive")
