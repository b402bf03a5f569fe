"""Fleet security: a device's jobs are created a batch at a time (``campaign_devices.created`` counts them; a
membership of an older store has all its jobs already).

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
    with op.batch_alter_table("campaign_devices") as batch:
        batch.add_column(sa.Column("created", sa.Integer(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE campaign_devices SET created = (SELECT COUNT(*) FROM jobs WHERE jobs.campaign_id = "
        "campaign_devices.campaign_id AND jobs.device_id = campaign_devices.device_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("campaign_devices") as batch:
        batch.drop_column("created")
