"""Initial schema: tokens, devices, agents, artifacts, campaigns and their architectures, jobs, leases, results.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.String(32)


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "artifacts",
        sa.Column("key_digest", sa.String(64), nullable=False),
        sa.Column("space", sa.String(32), nullable=False),
        sa.Column("arch", sa.String(512), nullable=False),
        sa.Column("batch", sa.Integer(), nullable=False),
        sa.Column("resolution", sa.Integer(), nullable=False),
        sa.Column("classes", sa.Integer(), nullable=False),
        sa.Column("opset", sa.Integer(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        _time("requested_at"),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("file_name", sa.String(128), nullable=True),
        _time("built_at", nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("key_digest", name="pk_artifacts"),
    )
    op.create_index("ix_artifacts_requested_at", "artifacts", ["requested_at"])
    op.create_index("ix_artifacts_sha256", "artifacts", ["sha256"])

    op.create_table(
        "campaigns",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(128), nullable=True),
        sa.Column("space", sa.String(32), nullable=False),
        sa.Column("sampler", sa.String(16), nullable=True),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("runtime", sa.String(128), nullable=False),
        sa.Column("provider", sa.String(128), nullable=False),
        sa.Column("batch", sa.Integer(), nullable=False),
        sa.Column("threads", sa.Integer(), nullable=False),
        sa.Column("resolution", sa.Integer(), nullable=False),
        sa.Column("classes", sa.Integer(), nullable=False),
        sa.Column("opset", sa.Integer(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("devices", sa.JSON(), nullable=False),
        sa.Column("max_failures", sa.Integer(), nullable=False),
        _time("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_campaigns"),
    )

    op.create_table(
        "devices",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("fingerprint", sa.String(16), nullable=False),
        sa.Column("machine", sa.JSON(), nullable=False),
        _time("first_seen"),
        sa.PrimaryKeyConstraint("id", name="pk_devices"),
        sa.UniqueConstraint("fingerprint", name="uq_devices_fingerprint"),
        sa.UniqueConstraint("name", name="uq_devices_name"),
    )

    op.create_table(
        "agents",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("device_id", ID, nullable=False),
        sa.Column("machine", sa.JSON(), nullable=False),
        sa.Column("runtimes", sa.JSON(), nullable=False),
        _time("enrolled_at"),
        _time("last_seen"),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], name="fk_agents_device_id"),
        sa.PrimaryKeyConstraint("id", name="pk_agents"),
        sa.UniqueConstraint("name", name="uq_agents_name"),
    )
    op.create_index("ix_agents_device_id", "agents", ["device_id"])

    op.create_table(
        "campaign_archs",
        sa.Column("campaign_id", ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("arch", sa.String(512), nullable=False),
        sa.Column("artifact_digest", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["artifact_digest"], ["artifacts.key_digest"], name="fk_campaign_archs_artifact_digest"
        ),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name="fk_campaign_archs_campaign_id"),
        sa.PrimaryKeyConstraint("campaign_id", "position", name="pk_campaign_archs"),
    )
    op.create_index("ix_campaign_archs_artifact_digest", "campaign_archs", ["artifact_digest"])

    op.create_table(
        "campaign_devices",
        sa.Column("campaign_id", ID, nullable=False),
        sa.Column("device_id", ID, nullable=False),
        _time("joined_at"),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name="fk_campaign_devices_campaign_id"),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], name="fk_campaign_devices_device_id"),
        sa.PrimaryKeyConstraint("campaign_id", "device_id", name="pk_campaign_devices"),
    )

    op.create_table(
        "jobs",
        sa.Column("id", ID, nullable=False),
        sa.Column("campaign_id", ID, nullable=False),
        sa.Column("device_id", ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("leases", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("expirations", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("lease_id", ID, nullable=True),
        _time("lease_expires_at", nullable=True),
        sa.Column("result_id", sa.String(36), nullable=True),
        _time("finished_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id", "position"],
            ["campaign_archs.campaign_id", "campaign_archs.position"],
            name="fk_jobs_campaign_id_position",
        ),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], name="fk_jobs_device_id"),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.UniqueConstraint("campaign_id", "device_id", "position", name="uq_jobs_campaign_id_device_id_position"),
    )
    op.create_index("ix_jobs_device_state", "jobs", ["device_id", "state"])

    op.create_table(
        "tokens",
        sa.Column("id", ID, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(128), nullable=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("agent_id", ID, nullable=True),
        _time("created_at"),
        _time("revoked_at", nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name="fk_tokens_agent_id"),
        sa.PrimaryKeyConstraint("id", name="pk_tokens"),
    )
    op.create_index("ix_tokens_agent_id", "tokens", ["agent_id"])

    op.create_table(
        "leases",
        sa.Column("id", ID, nullable=False),
        sa.Column("job_id", ID, nullable=False),
        sa.Column("agent_id", ID, nullable=False),
        _time("granted_at"),
        _time("expires_at"),
        _time("released_at", nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name="fk_leases_agent_id"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_leases_job_id"),
        sa.PrimaryKeyConstraint("id", name="pk_leases"),
    )
    op.create_index("ix_leases_agent_id", "leases", ["agent_id"])
    op.create_index("ix_leases_job_id", "leases", ["job_id"])

    op.create_table(
        "results",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("job_id", ID, nullable=False),
        sa.Column("lease_id", ID, nullable=False),
        sa.Column("agent_id", ID, nullable=False),
        _time("received_at"),
        _time("measured_at"),
        sa.Column("error", sa.Text(), nullable=True),
        *[
            sa.Column(name, sa.Float(), nullable=True)
            for name in ("median_ms", "mean_ms", "std_ms", "min_ms", "max_ms", "p90_ms", "p99_ms", "mad_ms", "cv")
        ],
        sa.Column("runs", sa.Integer(), nullable=True),
        sa.Column("times_ms", sa.LargeBinary(), nullable=True),
        sa.Column("warmup_runs", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("stable", sa.Boolean(), nullable=False),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("attempt_flags", sa.JSON(), nullable=False),
        sa.Column("ref_ratio", sa.Float(), nullable=True),
        sa.Column("wall_s", sa.Float(), nullable=False),
        sa.Column("runtime_version", sa.String(64), nullable=False),
        sa.Column("optimization", sa.String(64), nullable=False),
        sa.Column("latbench_version", sa.String(64), nullable=False),
        sa.Column("numpy_version", sa.String(64), nullable=False),
        sa.Column("state_before", sa.JSON(), nullable=True),
        sa.Column("state_after", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name="fk_results_agent_id"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_results_job_id"),
        sa.ForeignKeyConstraint(["lease_id"], ["leases.id"], name="fk_results_lease_id"),
        sa.PrimaryKeyConstraint("id", name="pk_results"),
    )
    op.create_index("ix_results_job_id", "results", ["job_id"])


def downgrade() -> None:
    for table in ("results", "leases", "tokens", "jobs", "campaign_devices", "campaign_archs", "agents", "devices",
                  "campaigns", "artifacts"):  # fmt: skip
        op.drop_table(table)
