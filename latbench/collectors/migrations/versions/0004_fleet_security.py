"""Fleet security: a device's jobs are created a batch at a time (``campaign_devices.created`` counts them; a
membership of an older store has all its jobs already), and tokens get limits (expiry; for enrollment tokens a
number of uses and the agent names they may enroll), and each agent records the device fingerprint it claimed.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("max_uses", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("uses", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("agent_names", sa.JSON(), nullable=True))
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("fingerprint", sa.String(16), nullable=True))
    with op.batch_alter_table("campaign_devices") as batch:
        batch.add_column(sa.Column("created", sa.Integer(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE campaign_devices SET created = (SELECT COUNT(*) FROM jobs WHERE jobs.campaign_id = "
        "campaign_devices.campaign_id AND jobs.device_id = campaign_devices.device_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("fingerprint")
    with op.batch_alter_table("campaign_devices") as batch:
        batch.drop_column("created")
    with op.batch_alter_table("tokens") as batch:
        for column in ("agent_names", "uses", "max_uses", "expires_at"):
            batch.drop_column(column)
