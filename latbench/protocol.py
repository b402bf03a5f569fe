"""The messages between agents and the collector, versioned under ``/v1``: the only module both sides import.

Every request body is a pydantic model that rejects unknown fields, wrong types, NaN/inf and out-of-range
values, so a collector can answer bad input with a 422 before it touches its store. Errors travel as
``ErrorBody`` (a machine-readable ``code`` and a human ``message``).
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

API_PREFIX = "/v1"
MODEL_SET = "model"
"""The ``space`` of campaigns and results of users' model files (``latbench.spaces.modelset``)."""
MAX_BODY_BYTES = 32 * 2**20
"""Largest request body a collector accepts (a result of 30 s of 0.1 ms runs is about 3 MB of JSON)."""
MAX_RUNS_PER_RESULT = 500_000
MAX_RESULTS_PER_BATCH = 500
MAX_JOBS_PER_LEASE = 64

Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@:+-]*$")]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


def _a_finite_number(value: object) -> object:
    """JSON ``true`` and ``"2.0"`` are no numbers, though pydantic's lax mode would read them as 1.0 and 2.0; and
    NaN or an infinity is refused as such, where the bound checked first would say "greater than 0"."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    if isinstance(value, (str, bytes)):
        raise ValueError("a string is not a number: send the number itself")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number, not NaN or an infinity")
    return value


PositiveMs = Annotated[float, BeforeValidator(_a_finite_number), Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, BeforeValidator(_a_finite_number), Field(ge=0, allow_inf_nan=False)]
InputShapes = dict[
    Annotated[str, Field(min_length=1, max_length=256)],
    Annotated[list[Annotated[int, Field(ge=1, le=2**31 - 1)]], Field(max_length=16)],
]
"""A model file's input shapes by input name: what fills its dynamic dimensions (``latbench measure --input``)."""
ModelFormat = Literal["onnx", "tflite"]
MAX_MODEL_BYTES = 512 * 2**20
"""A collector's default limit on an uploaded model file (``collector serve --max-model-mb``)."""
MAX_FAILURE_REASONS = 3
"""How many distinct errors a campaign's status shows per device: enough to tell one cause from several."""
MAX_ARTIFACT_BYTES = 16 * 2**30
"""The largest artifact an agent downloads: a job that declares more is refused (``JobSpec.artifact_bytes``)."""


def _absent(value: object) -> bool:
    """A field added for model files is left out of messages without it, so that agents and collectors from
    before it (which refuse unknown fields) still understand the messages about architectures."""
    return value is None


def _not_set(value: object) -> bool:
    """A flag added later is left out while false, for the same reason as ``_absent``."""
    return value is False


class Message(BaseModel):
    """Strict base: unknown fields are an error, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ErrorBody(Message):
    code: str
    message: str
    detail: Any = None


# --- enrollment and liveness ---------------------------------------------------------------------------------


class RuntimeOffer(Message):
    """A runtime an agent can run, with the providers (devices) it offers here."""

    name: Name
    version: Annotated[str, Field(max_length=64)]
    providers: list[Name] = Field(default_factory=lambda: ["cpu"], max_length=16)


class MachineInfoModel(Message):
    cpu_model: Annotated[str, Field(max_length=256)]
    machine: Annotated[str, Field(max_length=64)]
    cores_physical: int | None = Field(default=None, ge=1)
    cores_logical: int | None = Field(default=None, ge=1)
    memory_gb: NonNegative | None = None
    os: Annotated[str, Field(max_length=256)]
    python: Annotated[str, Field(max_length=64)]
    hostname: Annotated[str, Field(max_length=256)]


class EnrollRequest(Message):
    """Sent once with an enrollment token; the answer carries the agent's own token."""

    name: Name
    device_name: Name | None = None
    fingerprint: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
    machine: MachineInfoModel
    runtimes: list[RuntimeOffer] = Field(min_length=1, max_length=16)


Seconds = Annotated[float, Field(ge=0, le=86_400, allow_inf_nan=False)]
"""A wait a collector tells an agent: finite and at most a day, so no answer can make it spin or never wake."""
Printable = Annotated[str, Field(pattern=r"^[^\x00-\x1f\x7f]*$")]
"""Text an agent logs: no control characters, so none can forge a log line or drive a terminal."""


class EnrollResponse(Message):
    agent_id: str
    agent_token: Annotated[str, Field(pattern=r"^[\x21-\x7e]{1,512}$")]
    """Sent in a header on every request, so printable ASCII without spaces (a token that is not would be saved,
    and break every later start)."""
    device_id: str
    device_name: str
    heartbeat_interval_s: Annotated[float, Field(ge=0.1, le=86_400, allow_inf_nan=False)]
    lease_ttl_s: Seconds


class HeartbeatRequest(Message):
    lease_ids: list[str] = Field(default_factory=list, max_length=1024)
    """Leases the agent still works on; the collector renews those that are still its own."""


class HeartbeatResponse(Message):
    renewed: list[str]
    lost: list[str]
    """Leases the agent named that are no longer its own (expired and re-leased, or their job is done)."""
    expires_at: datetime


# --- work ------------------------------------------------------------------------------------------------------


class MeasurementSettings(Message):
    """The measurement loop's settings, mirrored from ``latbench.agents.measure.TimingSettings``."""

    warmup_runs: int = Field(default=10, ge=0, le=100_000)
    warmup_time_s: float = Field(default=0.5, ge=0, le=600, allow_inf_nan=False)
    min_runs: int = Field(default=50, ge=1, le=MAX_RUNS_PER_RESULT)
    min_time_s: float = Field(default=1.0, ge=0, le=600, allow_inf_nan=False)
    max_time_s: float = Field(default=30.0, gt=0, le=3600, allow_inf_nan=False)
    cv_threshold: float = Field(default=0.2, gt=0, allow_inf_nan=False)
    drift_tolerance: float = Field(default=0.15, gt=0, allow_inf_nan=False)
    max_attempts: int = Field(default=3, ge=1, le=20)
    cooldown_s: float = Field(default=0.0, ge=0, le=600, allow_inf_nan=False)
    profile_runs: int = Field(default=0, ge=0, le=10_000, exclude_if=lambda runs: not runs)
    """Runs of a per-operator profile after the timed runs (``--profile``); 0, and left out of messages, for none."""


class LeaseRequest(Message):
    max_jobs: int = Field(default=1, ge=1, le=MAX_JOBS_PER_LEASE)
    runtimes: list[Name] | None = None
    """Restrict to these runtimes (default: every runtime the agent enrolled with)."""


ArtifactFormat = Literal["onnx", "tflite", "fp16.tflite", "torch.json", "int8.onnx", "int8.tflite"]


class JobSpec(Message):
    """One architecture to measure on the leasing agent's device, with everything needed to do it."""

    job_id: Annotated[str, Field(max_length=128)]
    lease_id: Annotated[str, Field(max_length=128)]
    campaign_id: Annotated[str, Field(max_length=128)]
    space: Annotated[str, Field(max_length=64)]
    arch: Annotated[Printable, Field(max_length=512)]
    arch_index: int | None = Field(ge=0, le=2**31 - 1)
    runtime: Name
    provider: Name
    batch: int = Field(ge=1, le=4096)
    threads: int = Field(ge=1, le=1024)
    resolution: int = Field(ge=0, le=4096)
    """0 for a model file, whose input shapes set it."""
    classes: int = Field(ge=0, le=100_000)
    opset: int = Field(ge=0, le=1000)
    artifact_sha256: Sha256
    artifact_bytes: int = Field(ge=0, le=MAX_ARTIFACT_BYTES)
    artifact_format: ArtifactFormat = "onnx"
    """The format of both the artifact and the reference model: the one the campaign's runtime loads, as the
    collector resolved it; an agent whose runtime loads another refuses the job rather than load a wrong file."""
    input_shapes: InputShapes | None = Field(default=None, exclude_if=_absent)
    """A model file's input shapes as the campaign gave them (``space`` ``model``); ``None`` for architectures."""
    reference_sha256: Sha256 | None
    """The drift-probe model (a fixed NB201 cell at batch 1); ``None`` disables the reference check."""
    settings: MeasurementSettings
    attempt: int = Field(ge=0, le=2**31 - 1)
    expires_at: datetime


class LeaseGrant(Message):
    jobs: list[JobSpec] = Field(max_length=MAX_JOBS_PER_LEASE)
    retry_after_s: Seconds
    """How long an agent that got no job should wait before asking again."""


class LeaseRelease(Message):
    lease_ids: list[str] = Field(min_length=1, max_length=1024)
    reason: Annotated[str, Field(max_length=512)] = "released"


class LeaseReleaseResponse(Message):
    released: list[str]
    ignored: list[str]


class LatencyStatsModel(Message):
    median_ms: PositiveMs
    mean_ms: PositiveMs
    std_ms: NonNegative
    min_ms: PositiveMs
    max_ms: PositiveMs
    p90_ms: PositiveMs
    p99_ms: PositiveMs
    mad_ms: NonNegative
    cv: NonNegative
    runs: int = Field(ge=1, le=MAX_RUNS_PER_RESULT)


class MachineStateModel(Message):
    load_1m: NonNegative | None = None
    cpu_freq_mhz: NonNegative | None = None
    governor: Annotated[str, Field(max_length=64)] | None = None
    temperature_c: float | None = Field(default=None, allow_inf_nan=False)
    memory_available_gb: NonNegative | None = None


MAX_PROFILE_OPS = 100_000


class OpTimeModel(Message):
    """``latbench.profiles.OpTime``."""

    node: Annotated[str, Field(max_length=1024)]
    op: Annotated[str, Field(max_length=256)]
    ms: NonNegative
    calls: int = Field(default=1, ge=1, le=2**31 - 1)


class OpProfileModel(Message):
    """``latbench.profiles.OpProfile``: a per-operator profile taken after the timed runs."""

    runtime: Annotated[str, Field(max_length=128)]
    provider: Annotated[str, Field(max_length=128)]
    runs: int = Field(ge=1, le=10_000)
    ops: list[OpTimeModel] = Field(default_factory=list, max_length=MAX_PROFILE_OPS)


class ResultItem(Message):
    """One job's outcome: a measurement (``error`` is None) or the agent's error."""

    result_id: UUID
    """Chosen by the agent, so a retried push is recognised and stored once."""
    job_id: str
    lease_id: str
    error: Annotated[str, Field(max_length=4096)] | None = None
    final: bool = Field(default=False, exclude_if=_not_set)
    """An error that another attempt on this device would meet again (``LatbenchError.final``): the collector
    fails the job at once instead of leasing it again. Left out when false, as agents from before it send."""
    stats: LatencyStatsModel | None = None
    times_ms: list[PositiveMs] = Field(default_factory=list, max_length=MAX_RUNS_PER_RESULT)
    warmup_runs: int = Field(default=0, ge=0, le=2**31 - 1)
    attempts: int = Field(default=1, ge=1, le=2**31 - 1)
    stable: bool = True
    flags: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=32)
    attempt_flags: list[list[Annotated[str, Field(max_length=64)]]] = Field(default_factory=list, max_length=32)
    ref_ratio: PositiveMs | None = None
    wall_s: NonNegative = 0.0
    measured_at: datetime
    runtime_version: Annotated[str, Field(max_length=64)] = ""
    optimization: Annotated[str, Field(max_length=64)] = ""
    """The runtime's graph-optimisation setting (``Runtime.settings()["optimization"]``), if it has one."""
    latbench_version: Annotated[str, Field(max_length=64)] = ""
    numpy_version: Annotated[str, Field(max_length=64)] = ""
    input_shapes: Annotated[str, Field(max_length=4096)] | None = Field(default=None, exclude_if=_absent)
    """The shapes a model file was timed with (``input_shapes`` column: ``name:1x128;...``); ``None`` for
    architectures, whose input batch and resolution set."""
    state_before: MachineStateModel | None = None
    state_after: MachineStateModel | None = None
    load_ms: NonNegative | None = Field(default=None, exclude_if=_absent)
    """Loading the model (session creation); this and the fields below are left out when absent, as agents
    from before them send."""
    first_run_ms: NonNegative | None = Field(default=None, exclude_if=_absent)
    peak_rss_mb: NonNegative | None = Field(default=None, exclude_if=_absent)
    idle_waited_s: NonNegative | None = Field(default=None, exclude_if=_absent)
    idle_load: NonNegative | None = Field(default=None, exclude_if=_absent)
    profile: OpProfileModel | None = Field(default=None, exclude_if=_absent)

    @field_validator("stats")
    @classmethod
    def _consistent(cls, stats: LatencyStatsModel | None) -> LatencyStatsModel | None:
        if stats is not None and not (stats.min_ms <= stats.median_ms <= stats.max_ms):
            raise ValueError("stats must satisfy min_ms <= median_ms <= max_ms")
        return stats

    @model_validator(mode="after")
    def _measurement_or_error(self) -> ResultItem:
        if (self.error is None) == (self.stats is None):
            raise ValueError("a result carries either stats (a measurement) or an error, not both or neither")
        if self.final and self.error is None:
            raise ValueError("only an error result can be final")
        if self.stats is not None and self.times_ms and len(self.times_ms) != self.stats.runs:
            raise ValueError(f"times_ms has {len(self.times_ms)} runs but stats.runs is {self.stats.runs}")
        return self


class ResultBatch(Message):
    results: list[ResultItem] = Field(min_length=1, max_length=MAX_RESULTS_PER_BATCH)


AckStatus = Literal["stored", "duplicate", "dropped", "failed", "requeued"]


class ResultAck(Message):
    """What the collector did with one result; the agent may forget a result once it has any ack."""

    result_id: UUID
    status: AckStatus
    message: str


class ResultBatchResponse(Message):
    acks: list[ResultAck]


# --- management (admin token) ------------------------------------------------------------------------------------


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError(f"{value.isoformat()} is out of range in UTC") from None


Expiry = Annotated[AwareDatetime, AfterValidator(_in_utc)]
"""When a token stops working: with its time zone (a bare time would mean one thing here and another on the
collector), kept in UTC."""


class EnrollmentTokenCreate(Message):
    name: Name | None = None
    expires_at: Expiry | None = None
    max_uses: int | None = Field(default=None, ge=1, le=2**31 - 1)
    """Enrollments the token may make; unlimited if not given."""
    agent_names: list[Name] | None = Field(default=None, min_length=1, max_length=1024)
    """The only agent names the token may enroll; any if not given."""


class AdminTokenCreate(Message):
    name: Name | None = None
    expires_at: Expiry | None = None


class EnrollmentTokenCreated(Message):
    token_id: str
    name: str | None
    token: str


class EnrollmentTokenInfo(Message):
    """An enrollment token as the admin sees it: never the token itself, only its id."""

    token_id: str
    name: str | None
    created_at: datetime
    revoked_at: datetime | None
    expires_at: datetime | None = None
    max_uses: int | None = None
    uses: int = 0
    agent_names: list[str] | None = None


class AgentRevoked(Message):
    """An agent whose tokens an admin revoked; its jobs went back to the queue."""

    name: str
    agent_id: str
    released: int
    """How many leased jobs went back to the queue."""


class ModelInfo(Message):
    """A model file the collector holds: its content hash, the format its content has, its size in bytes."""

    sha256: Sha256
    format: ModelFormat
    size: int


class ModelRef(Message):
    """A model file of a campaign: uploaded before (``PUT /v1/admin/models/{sha256}``), measured as ``name``."""

    name: Annotated[Printable, Field(min_length=1, max_length=512)]
    sha256: Sha256
    input_shapes: InputShapes | None = None


CampaignPriority = Annotated[int, BeforeValidator(_a_finite_number), Field(ge=-1_000_000, le=1_000_000)]


class AdaptivePlan(Message):
    """An adaptive campaign: each device measures ``archs`` first, then after each batch of results the collector's
    acquisition picks its next ``batch``, until its predictor's estimated SRCC reaches ``target_srcc`` or it has
    ``budget`` results."""

    target_srcc: float = Field(default=0.95, gt=0, le=1)
    budget: int = Field(default=60, ge=4, le=10_000)
    batch: int = Field(default=5, ge=1, le=1_000)


class CampaignCreate(Message):
    space: Annotated[str, Field(max_length=64)]
    """A registered search space (``latbench.spaces``), stored by its canonical lower-case name; ``model`` (the
    default when ``models`` is given) for a campaign of model files."""
    samples: int | None = Field(default=None, ge=1, le=100_000)
    archs: list[Annotated[str, Field(max_length=512)]] | None = Field(default=None, max_length=100_000)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    sampler: Literal["uniform", "connected"] = "uniform"
    runtime: Name = "onnxruntime"
    provider: Name = "cpu"
    precision: Literal["fp32", "int8"] = Field(default="fp32", exclude_if=lambda p: p == "fp32")
    """The architectures' numeric precision (``latbench.precision``): it picks the artifact format jobs carry.
    Left out of messages at fp32, so collectors from before it still understand them."""
    batch: int = Field(default=1, ge=1, le=4096)
    threads: int = Field(default=1, ge=1, le=1024)
    resolution: int | None = Field(default=None, ge=1, le=4096)
    classes: int | None = Field(default=None, ge=1, le=100_000)
    settings: MeasurementSettings = Field(default_factory=MeasurementSettings)
    devices: list[Name] = Field(default_factory=list, max_length=1024)
    """Device names to measure on; empty means every device whose agents offer the runtime."""
    name: Annotated[str, Field(max_length=128)] | None = None
    max_failures: int = Field(default=3, ge=1, le=100)
    """Error results plus expired leases after which a job is marked failed."""
    models: list[ModelRef] | None = Field(default=None, min_length=1, max_length=10_000)
    """Uploaded model files to measure instead of a space's architectures; their names must differ."""
    adaptive: AdaptivePlan | None = None
    """Measure adaptively: ``archs`` is every device's first batch (``latbench.predictor.adaptive.first_batch``)."""
    priority: CampaignPriority = Field(default=0, exclude_if=lambda p: p == 0)
    """Campaigns of higher priority are leased first; equal ones oldest first. Left out of messages at 0, so
    collectors from before it still understand them."""

    @model_validator(mode="before")
    @classmethod
    def _models_are_a_model_set(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("models") is not None and data.get("space") is None:
            return {**data, "space": MODEL_SET}
        return data

    @field_validator("space")
    @classmethod
    def _lower_case_space(cls, space: str) -> str:
        """Spaces are named in lower case; whether one is registered is the collector's check (a 422 too)."""
        return space.strip().lower()

    @model_validator(mode="after")
    def _what_to_measure(self) -> CampaignCreate:
        if self.space != MODEL_SET:
            if self.models is not None:
                raise ValueError(f"models are measured as space {MODEL_SET!r}, not {self.space!r}")
            if (self.samples is None) == (self.archs is None):
                raise ValueError("give either samples or archs")
            if self.adaptive is not None and self.archs is None:
                raise ValueError("an adaptive campaign gives its first batch as archs, not samples")
            return self
        if self.models is None or self.samples is not None or self.archs is not None:
            raise ValueError("a campaign of model files gives models (uploaded files), not samples or archs")
        if self.batch != 1 or self.resolution is not None or self.classes is not None:
            raise ValueError("model files set their own inputs: give input_shapes, not batch, resolution or classes")
        if self.precision != "fp32":
            raise ValueError("model files are measured at their own precision: give precision for architectures")
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"two models are named {', '.join(map(repr, twice[:5]))}: give each its own name")
        return self


class CampaignCreated(Message):
    campaign_id: str


class PriorityChange(Message):
    """A running campaign's new priority (``POST /v1/admin/campaigns/{id}/priority``)."""

    priority: CampaignPriority


class FailureReason(Message):
    """One error that failed ``jobs`` of a device's jobs (each job's last error)."""

    error: str
    jobs: int


class DeviceProgress(Message):
    device: str
    queued: int
    leased: int
    done: int
    failed: int
    total: int
    rate_per_min: float | None
    eta_s: float | None
    """None where no pace is known, or the device is not ``online`` (a stopped device keeps its past pace)."""
    failures: list[FailureReason] = Field(default_factory=list)
    """Why the failed jobs failed: their last errors, most frequent first (at most ``MAX_FAILURE_REASONS``)."""
    online: bool | None = None
    """Whether one of the device's agents was heard from lately (as ``DeviceInfo.online``); None if unknown."""
    last_result_at: datetime | None = None
    """When the device last finished a job of the campaign (a result or a failure)."""
    leased_since: datetime | None = None
    """When the oldest of its current leases of the campaign was granted: a stuck agent holds one for long."""


CampaignState = Literal["building", "running", "paused", "done", "failed", "cancelled"]
"""``cancelled``: an admin cancelled it (``latbench campaign cancel``); none of its jobs is leased any more.
``paused``: an admin paused it (``latbench campaign pause``); none is leased until it is resumed."""
FINISHED_STATES: tuple[CampaignState, ...] = ("done", "failed", "cancelled")
"""The states a campaign's watchers stop waiting at."""


class LearningPoint(Message):
    """The predictor of one device after ``results`` results: its estimated SRCC and that estimate's spread;
    ``checks`` of the results were random check results (measured to confirm a target before stopping on it)."""

    results: int
    srcc: float
    srcc_std: float
    checks: int = Field(default=0, ge=0)


AcquisitionStop = Literal["target", "budget", "exhausted"]
"""Why an adaptive acquisition stopped a device: its estimate reached the target, its budget was spent, or no
candidate was left. The acquisition decides it; the collector records it and shows it."""
AdaptiveStop = AcquisitionStop | Literal["failed"]
"""How an adaptive campaign's device stopped: the acquisition's reasons, or ``failed`` (the collector's)."""


class AdaptiveDevice(Message):
    """One device of an adaptive campaign: ``measuring`` until it stops (``stop``: ``target`` reached, ``budget``
    spent, candidates ``exhausted``, or ``failed`` with ``error``), then ``model`` names its predictor's file
    among the collector's models. ``caveat`` warns when the last estimate is less sure than its spread says (a
    device that stopped short of its target, where the estimate never settled, or on its target without the
    random check results that confirm it), in the acquisition's words."""

    device: str
    state: Literal["measuring", "stopped"]
    stop: AdaptiveStop | None = None
    curve: list[LearningPoint] = Field(default_factory=list)
    model: str | None = None
    error: str | None = None
    caveat: str | None = None


class CampaignStatus(Message):
    campaign_id: str
    name: str | None
    space: str
    runtime: str
    provider: str
    batch: int
    threads: int
    samples: int
    created_at: datetime
    precision: str | None = None
    """The architectures' precision (``fp32``, ``int8``); None for a campaign of model files, measured as given."""
    artifacts_ready: int
    artifacts_failed: int = 0
    state: CampaignState
    """``failed``: an artifact could not be built (``error`` says why); its jobs count as failed."""
    error: str | None = None
    devices: list[DeviceProgress]
    priority: int = 0
    """Higher is leased first (``latbench campaign priority``)."""
    paused_at: datetime | None = None
    """Since when it is paused; it shows ``paused`` until it is resumed, or ``done`` once nothing is left."""
    adaptive: AdaptivePlan | None = None
    adaptive_devices: list[AdaptiveDevice] | None = None
    """Per device of an adaptive campaign, its learning curve and how it stopped."""


DeviceState = Literal["live", "retired"]
"""``retired``: an admin retired the device (``latbench devices retire``); its agents are refused, its results
stay under its retired name, and its name was freed for replacement hardware."""


class DeviceInfo(Message):
    device_id: str
    name: str
    fingerprint: str
    machine: dict[str, Any]
    runtimes: list[str]
    agents: list[str]
    conflicts: list[str] = Field(default_factory=list)
    """Agents whose reported hardware differs from the device's record: a fingerprint is a claim anyone can copy,
    so an admin checks these and revokes an impostor (``latbench agents revoke``)."""
    first_seen: datetime
    last_seen: datetime
    online: bool
    revoked_agents: list[str] = Field(default_factory=list, exclude_if=lambda names: not names)
    """Agents of the device an admin revoked (``agents`` lists the live ones); left out while empty, as
    ``_absent`` says."""
    state: DeviceState = Field(default="live", exclude_if=lambda state: state == "live")
    """Left out while ``live``, as ``revoked_agents`` while empty; only ``GET /v1/admin/devices?all=true`` lists
    retired devices."""
    retired_at: datetime | None = Field(default=None, exclude_if=_absent)
    former_name: str | None = Field(default=None, exclude_if=_absent)
    """A retired device's name before it was retired (its ``name`` is now ``NAME@retired-DATE``)."""


class DeviceRename(Message):
    """The new name of a device (``POST /v1/admin/devices/{name}/rename``)."""

    name: Name


class DeviceUnretire(Message):
    """The name an unretired device takes: by default (``None``) the one it had before it was retired."""

    name: Name | None = None


class DeviceChanged(Message):
    """A device an admin renamed, retired or unretired, as it is now."""

    device_id: str
    name: str
    previous_name: str
    state: DeviceState
    retired_at: datetime | None = None
    released: int = 0
    """How many of its leased jobs went back to the queue (retiring)."""
    predictor: str | None = None
    """The predictor file among the collector's models (``<name>.pt``) that moved with the device, if one did."""


AgentState = Literal["live", "revoked"]
"""``revoked``: an admin revoked the agent (``latbench agents revoke``); only an admin token enrolls it again."""


class AgentInfo(Message):
    """An enrolled agent as the admin sees it (``GET /v1/admin/agents``): who has access, and since when."""

    name: str
    agent_id: str
    device: str
    state: AgentState
    enrolled_at: datetime
    last_seen: datetime
    token_id: str | None
    """The agent's current token: its live one, or for a revoked agent the last it held."""
    token_created_at: datetime | None
    revoked_at: datetime | None = None
