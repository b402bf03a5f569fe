"""The collector's tables as typed SQLAlchemy models; ``migrations/`` creates exactly this schema.

Jobs are per (campaign, architecture, device) and are created a batch at a time as a device leases from a campaign;
a lease is one grant of one job to one agent, kept after it ends so a job's history stays readable. Secrets are
never stored: tokens keep a SHA-256 digest only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from latbench.collectors.db import UTCDateTime

ID = sa.String(32)


class Base(DeclarativeBase):
    __table__: ClassVar[sa.Table]  # declarative classes with a ``__tablename__`` map a Table, no other FromClause
    metadata = sa.MetaData(
        naming_convention={
            "pk": "pk_%(table_name)s",
            "fk": "fk_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        }
    )
    # A Python None is SQL NULL, not JSON ``null``: "is this campaign adaptive" is ``adaptive IS NOT NULL``.
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: sa.JSON(none_as_null=True),
        list[Any]: sa.JSON(none_as_null=True),
    }


class TokenRow(Base):
    """An admin, enrollment or agent token, found by the id inside it and checked against its digest."""

    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    name: Mapped[str | None] = mapped_column(sa.String(128))
    token_hash: Mapped[str] = mapped_column(sa.String(64))
    agent_id: Mapped[str | None] = mapped_column(ID, sa.ForeignKey("agents.id"), index=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    max_uses: Mapped[int | None]
    """Enrollments an enrollment token may make; ``uses`` counts those made."""
    uses: Mapped[int] = mapped_column(server_default="0")
    agent_names: Mapped[list[Any] | None]
    """The agent names an enrollment token may enroll (``None``: any)."""


class DeviceRow(Base):
    """A hardware configuration, identified by the agents' fingerprint and named at its first enrollment; an admin
    may rename it, or retire it, which moves it to a name of its own (``NAME@retired-DATE``) and frees its name
    for replacement hardware (``enrollment.retire``)."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(128), unique=True)
    fingerprint: Mapped[str] = mapped_column(sa.String(16), unique=True)
    machine: Mapped[dict[str, Any]]
    first_seen: Mapped[datetime]
    retired_at: Mapped[datetime | None]
    """When an admin retired the device: its agents are refused from then on, its results stay its own."""
    former_name: Mapped[str | None] = mapped_column(sa.String(128))
    """A retired device's name before it was retired, which unretiring gives back if it is still free."""


class AgentRow(Base):
    """A measuring process on a device, with the runtimes it offers (``RuntimeOffer`` dicts)."""

    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(128), unique=True)
    device_id: Mapped[str] = mapped_column(ID, sa.ForeignKey("devices.id"), index=True)
    fingerprint: Mapped[str | None] = mapped_column(sa.String(16))
    """The device fingerprint the agent claimed at its last enrollment (a claim: it hashes public facts)."""
    machine: Mapped[dict[str, Any]]
    """The machine the agent reported; its device's record keeps what the first enrolling agent reported."""
    runtimes: Mapped[list[Any]]
    enrolled_at: Mapped[datetime]
    last_seen: Mapped[datetime]


class ArtifactRow(Base):
    """A model file the collector builds once per key and format (``ArtifactKey.digest(format)``); ``sha256`` is
    set once the file exists. An uploaded model file (space ``model``) is keyed by its content hash, with
    ``arch`` that hash too, and exists from the start."""

    __tablename__ = "artifacts"

    key_digest: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    format: Mapped[str] = mapped_column(sa.String(16), server_default="onnx")
    space: Mapped[str] = mapped_column(sa.String(32))
    arch: Mapped[str] = mapped_column(sa.String(512))
    batch: Mapped[int]
    resolution: Mapped[int]
    classes: Mapped[int]
    opset: Mapped[int]
    seed: Mapped[int]
    requested_at: Mapped[datetime] = mapped_column(index=True)
    sha256: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    size: Mapped[int | None] = mapped_column(sa.BigInteger)
    file_name: Mapped[str | None] = mapped_column(sa.String(128))
    built_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(sa.Text)


class ArtifactBlobRow(Base):
    """Part ``part`` (from 0) of the file whose content hashes to ``sha256``: a built or uploaded artifact kept in
    the store, so every replica can serve it (``latbench.collectors.blobs``)."""

    __tablename__ = "artifact_blobs"

    sha256: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    part: Mapped[int] = mapped_column(primary_key=True)
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)


class CampaignRow(Base):
    """What to measure (architectures of a space) and how (runtime, shapes, settings), on which devices."""

    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str | None] = mapped_column(sa.String(128))
    space: Mapped[str] = mapped_column(sa.String(32))
    sampler: Mapped[str | None] = mapped_column(sa.String(16))
    seed: Mapped[int] = mapped_column(sa.BigInteger)
    samples: Mapped[int]
    runtime: Mapped[str] = mapped_column(sa.String(128))
    format: Mapped[str] = mapped_column(sa.String(16), server_default="onnx")
    """The artifact format the runtime loads, resolved when the campaign is created."""
    provider: Mapped[str] = mapped_column(sa.String(128))
    batch: Mapped[int]
    threads: Mapped[int]
    resolution: Mapped[int]
    classes: Mapped[int]
    opset: Mapped[int]
    settings: Mapped[dict[str, Any]]
    devices: Mapped[list[Any]]
    max_failures: Mapped[int]
    created_at: Mapped[datetime]
    input_shapes: Mapped[dict[str, Any] | None]
    """A campaign of model files: each model's input shapes by its name (``InputShapes``), where given."""
    adaptive: Mapped[dict[str, Any] | None]
    """An adaptive campaign's plan (``AdaptivePlan``): its architectures grow as devices' acquisitions add them,
    and ``samples`` counts the first batch, which every device measures."""
    cancelled_at: Mapped[datetime | None]
    """When an admin cancelled the campaign: from then on none of its jobs is leased (``leasing``)."""
    priority: Mapped[int] = mapped_column(server_default="0")
    """Higher leases first (``leasing.grant``); campaigns of equal priority go oldest first."""
    paused_at: Mapped[datetime | None]
    """Since when an admin has paused the campaign: none of its jobs is leased until it is resumed."""


class CampaignArchRow(Base):
    """The campaign's architectures in order, each with the artifact it is measured on."""

    __tablename__ = "campaign_archs"

    campaign_id: Mapped[str] = mapped_column(ID, sa.ForeignKey("campaigns.id"), primary_key=True)
    position: Mapped[int] = mapped_column(primary_key=True)
    arch: Mapped[str] = mapped_column(sa.String(512))
    artifact_digest: Mapped[str] = mapped_column(sa.String(64), sa.ForeignKey("artifacts.key_digest"), index=True)


class CampaignDeviceRow(Base):
    """A device that has joined a campaign: its jobs for positions below ``created`` exist, the rest are queued
    in all but their row (``leasing._extend`` makes them as the device needs them)."""

    __tablename__ = "campaign_devices"

    campaign_id: Mapped[str] = mapped_column(ID, sa.ForeignKey("campaigns.id"), primary_key=True)
    device_id: Mapped[str] = mapped_column(ID, sa.ForeignKey("devices.id"), primary_key=True)
    joined_at: Mapped[datetime]
    created: Mapped[int] = mapped_column(server_default="0")


class AdaptiveDeviceRow(Base):
    """A device of an adaptive campaign: the results its last acquisition step saw, its learning curve
    (``LearningPoint`` dicts), and once stopped why (with the acquisition's caveat, if any), and its predictor's
    file name among the collector's models."""

    __tablename__ = "adaptive_devices"

    campaign_id: Mapped[str] = mapped_column(ID, sa.ForeignKey("campaigns.id"), primary_key=True)
    device_id: Mapped[str] = mapped_column(ID, sa.ForeignKey("devices.id"), primary_key=True)
    state: Mapped[str] = mapped_column(sa.String(16))
    stop: Mapped[str | None] = mapped_column(sa.String(16))
    seen: Mapped[int]
    curve: Mapped[list[Any]]
    model: Mapped[str | None] = mapped_column(sa.String(256))
    error: Mapped[str | None] = mapped_column(sa.Text)
    caveat: Mapped[str | None] = mapped_column(sa.Text)
    updated_at: Mapped[datetime]


class JobRow(Base):
    """One architecture of a campaign on one device: queued, leased, done (``result_id``) or failed.

    A leased job whose ``lease_expires_at`` has passed counts as queued; it goes back to the queue when another
    lease request takes it, which also counts the expiry as a failure.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "device_id", "position"),
        sa.ForeignKeyConstraint(["campaign_id", "position"], ["campaign_archs.campaign_id", "campaign_archs.position"]),
        sa.Index("ix_jobs_device_state", "device_id", "state"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ID)
    device_id: Mapped[str] = mapped_column(ID, sa.ForeignKey("devices.id"))
    position: Mapped[int]
    state: Mapped[str] = mapped_column(sa.String(8))
    leases: Mapped[int] = mapped_column(default=0)
    errors: Mapped[int] = mapped_column(default=0)
    expirations: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    lease_id: Mapped[str | None] = mapped_column(ID)
    lease_expires_at: Mapped[datetime | None]
    result_id: Mapped[str | None] = mapped_column(sa.String(36))
    finished_at: Mapped[datetime | None]


class LeaseRow(Base):
    """One grant of a job to an agent; ``released_at`` is set when it ends other than by expiry."""

    __tablename__ = "leases"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    job_id: Mapped[str] = mapped_column(ID, sa.ForeignKey("jobs.id"), index=True)
    agent_id: Mapped[str] = mapped_column(ID, sa.ForeignKey("agents.id"), index=True)
    granted_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    released_at: Mapped[datetime | None]


class ResultRow(Base):
    """What an agent reported for a lease: a measurement, or the error that stopped it (``error`` set).

    Per-run times are little-endian float64 milliseconds; machine states are ``MachineStateModel`` dicts.
    """

    __tablename__ = "results"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    job_id: Mapped[str] = mapped_column(ID, sa.ForeignKey("jobs.id"), index=True)
    lease_id: Mapped[str] = mapped_column(ID, sa.ForeignKey("leases.id"))
    agent_id: Mapped[str] = mapped_column(ID, sa.ForeignKey("agents.id"))
    received_at: Mapped[datetime]
    measured_at: Mapped[datetime]
    error: Mapped[str | None] = mapped_column(sa.Text)
    median_ms: Mapped[float | None] = mapped_column(sa.Float)
    mean_ms: Mapped[float | None] = mapped_column(sa.Float)
    std_ms: Mapped[float | None] = mapped_column(sa.Float)
    min_ms: Mapped[float | None] = mapped_column(sa.Float)
    max_ms: Mapped[float | None] = mapped_column(sa.Float)
    p90_ms: Mapped[float | None] = mapped_column(sa.Float)
    p99_ms: Mapped[float | None] = mapped_column(sa.Float)
    mad_ms: Mapped[float | None] = mapped_column(sa.Float)
    cv: Mapped[float | None] = mapped_column(sa.Float)
    runs: Mapped[int | None]
    times_ms: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    warmup_runs: Mapped[int]
    attempts: Mapped[int]
    stable: Mapped[bool]
    flags: Mapped[list[Any]]
    attempt_flags: Mapped[list[Any]]
    ref_ratio: Mapped[float | None] = mapped_column(sa.Float)
    wall_s: Mapped[float] = mapped_column(sa.Float)
    runtime_version: Mapped[str] = mapped_column(sa.String(64))
    optimization: Mapped[str] = mapped_column(sa.String(64))
    latbench_version: Mapped[str] = mapped_column(sa.String(64))
    numpy_version: Mapped[str] = mapped_column(sa.String(64))
    input_shapes: Mapped[str | None] = mapped_column(sa.Text)
    """A model file's input shapes as timed (``name:1x128;...``); ``None`` for architectures."""
    state_before: Mapped[dict[str, Any] | None]
    state_after: Mapped[dict[str, Any] | None]
    load_ms: Mapped[float | None] = mapped_column(sa.Float)
    first_run_ms: Mapped[float | None] = mapped_column(sa.Float)
    peak_rss_mb: Mapped[float | None] = mapped_column(sa.Float)
    idle_waited_s: Mapped[float | None] = mapped_column(sa.Float)
    idle_load: Mapped[float | None] = mapped_column(sa.Float)
    profile: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    """The per-operator profile, gzip-compressed JSON (``latbench.profiles.encode``); None without ``--profile``."""
