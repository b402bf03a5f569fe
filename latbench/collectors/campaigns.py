"""Campaigns: create one from a ``CampaignCreate`` (checked architectures, a seeded sample, or uploaded model
files) and report progress."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, insert, select
from sqlalchemy.orm import Session

from latbench.agents.measure import TimingSettings
from latbench.agents.runtimes import get_runtime
from latbench.artifacts import OPSET, REFERENCE_KEY, ArtifactKey, check_format
from latbench.collectors import adaptive, artifact_store, uploads
from latbench.collectors.db import new_id
from latbench.collectors.enrollment import online_after
from latbench.collectors.models import (
    AgentRow,
    ArtifactRow,
    CampaignArchRow,
    CampaignDeviceRow,
    CampaignRow,
    DeviceRow,
    JobRow,
    LeaseRow,
)
from latbench.errors import Conflict, InvalidArchitecture, InvalidRequest, LatbenchError, NotFound, UnknownSpace
from latbench.precision import artifact_format as precision_format
from latbench.precision import of_format as precision_of
from latbench.protocol import (
    MAX_FAILURE_REASONS,
    AdaptivePlan,
    CampaignCreate,
    CampaignState,
    CampaignStatus,
    DeviceProgress,
    FailureReason,
)
from latbench.spaces import MODEL_SET, get_space

RATE_WINDOW = timedelta(minutes=10)
"""Progress rates count the jobs done in this window, so an ETA follows the current pace."""
SHOWN_BAD_ARCHS = 3


def _archs(spec: CampaignCreate) -> list[str]:
    """The campaign's canonical architectures in order, without repeats."""
    space = get_space(spec.space)
    if spec.archs is None:
        assert spec.samples is not None
        try:
            return space.sample(spec.samples, spec.seed, connected_only=spec.sampler == "connected")
        except LatbenchError as exc:
            raise InvalidRequest(str(exc)) from exc
    if not spec.archs:
        raise InvalidRequest("archs is empty: give at least one architecture")
    canonical: list[str] = []
    bad: list[tuple[str, str]] = []
    for arch in spec.archs:
        try:
            canonical.append(space.canonical(arch))
        except InvalidArchitecture as exc:
            bad.append((arch, str(exc)))
    if bad:
        shown = "; ".join(message for _, message in bad[:SHOWN_BAD_ARCHS])
        raise InvalidRequest(
            f"{len(bad)} of {len(spec.archs)} architectures are not in {space.name}: {shown}",
            detail=[arch for arch, _ in bad[:100]],
        )
    return list(dict.fromkeys(canonical))


def artifact_format(runtime: str, precision: str = "fp32") -> str:
    """The artifact format runtime ``runtime`` loads at ``precision``, read from its class (runtime modules import
    their engines only when a runtime is built, so this stays light); ``onnx`` for a runtime this collector does
    not know at fp32, since a campaign may name one only its agents have."""
    try:
        runtime_cls = get_runtime(runtime)
    except (LatbenchError, ImportError) as exc:
        if precision == "fp32":
            return "onnx"
        raise InvalidRequest(f"precision {precision} needs a runtime this collector knows: {exc}") from exc
    try:
        return check_format(precision_format(runtime_cls, precision))
    except LatbenchError as exc:
        raise InvalidRequest(f"runtime {runtime!r}: {exc}") from exc


def _model_digests(session: Session, spec: CampaignCreate, fmt: str) -> list[str]:
    """The artifact digest of each model of ``spec``: every one uploaded, in the format the runtime loads."""
    assert spec.models is not None
    digests = []
    for model in spec.models:
        found = uploads.info(session, model.sha256)
        if found is None:
            raise InvalidRequest(
                f"model {model.name} (sha256 {model.sha256}) is not on the collector: upload it first",
                detail=model.sha256,
            )
        if found.format != fmt:
            raise InvalidRequest(f"model {model.name}: runtime {spec.runtime} loads {fmt} files, not {found.format}")
        digests.append(model.sha256)
    return digests


def create(session: Session, spec: CampaignCreate, now: datetime) -> CampaignRow:
    """Store a campaign and request its artifacts, and the reference model, in the format its runtime loads; its
    jobs appear as devices join (see ``leasing``). A campaign of model files measures the uploaded files as they
    are (nothing to build), each under its name, with its input shapes."""
    try:
        space = get_space(spec.space)
    except UnknownSpace as exc:
        raise InvalidRequest(str(exc)) from exc
    try:
        TimingSettings(**spec.settings.model_dump())
    except ValueError as exc:
        raise InvalidRequest(f"settings: {exc}") from exc
    fmt = artifact_format(spec.runtime, spec.precision)
    artifact_store.request(session, [REFERENCE_KEY], now, fmt)
    input_shapes = None
    if spec.models is not None:
        resolution = classes = opset = 0
        archs = [model.name for model in spec.models]
        digests = _model_digests(session, spec, fmt)
        input_shapes = {model.name: model.input_shapes for model in spec.models if model.input_shapes}
    else:
        resolution = spec.resolution or space.default_resolution
        try:
            space.validate_resolution(resolution)
        except LatbenchError as exc:
            raise InvalidRequest(str(exc)) from exc
        classes, opset = spec.classes or space.default_classes, OPSET
        archs = _archs(spec)
        keys = [ArtifactKey(space.name, arch, spec.batch, resolution, classes, OPSET, 0) for arch in archs]
        artifact_store.request(session, keys, now, fmt)
        digests = [key.digest(fmt) for key in keys]
    campaign = CampaignRow(
        id=new_id(),
        name=spec.name,
        space=space.name,
        sampler=spec.sampler if spec.samples is not None else None,
        seed=spec.seed,
        samples=len(archs),
        runtime=spec.runtime,
        format=fmt,
        provider=spec.provider,
        batch=spec.batch,
        threads=spec.threads,
        resolution=resolution,
        classes=classes,
        opset=opset,
        settings=spec.settings.model_dump(),
        devices=list(dict.fromkeys(spec.devices)),
        max_failures=spec.max_failures,
        created_at=now,
        input_shapes=input_shapes or None,
        adaptive=spec.adaptive.model_dump() if spec.adaptive is not None else None,
        priority=spec.priority,
    )
    session.add(campaign)
    session.flush()
    session.execute(
        insert(CampaignArchRow),
        [
            {"campaign_id": campaign.id, "position": i, "arch": arch, "artifact_digest": digest}
            for i, (arch, digest) in enumerate(zip(archs, digests, strict=True))
        ],
    )
    return campaign


def get(session: Session, campaign_id: str) -> CampaignRow:
    campaign = session.get(CampaignRow, campaign_id)
    if campaign is None:
        raise NotFound(f"no campaign {campaign_id!r}")
    return campaign


def cancel(session: Session, campaign_id: str, now: datetime) -> CampaignRow:
    """Stop leasing ``campaign_id``'s jobs (``leasing`` offers no cancelled campaign): queued jobs stay queued and
    are never measured, leased ones may still finish and their results are kept. Cancelling again changes
    nothing."""
    campaign = _locked(session, campaign_id)
    if campaign.cancelled_at is None:
        campaign.cancelled_at = now
    return campaign


def _locked(session: Session, campaign_id: str) -> CampaignRow:
    campaign = session.get(CampaignRow, campaign_id, with_for_update=True)
    if campaign is None:
        raise NotFound(f"no campaign {campaign_id!r}")
    return campaign


def pause(session: Session, campaign_id: str, now: datetime, lease_ttl_s: float) -> CampaignRow:
    """Stop leasing the campaign's jobs until ``resume``: leased ones run out as usual (an expired lease's job
    waits in the queue, its expiry not counted). Pausing again changes nothing; a campaign with no work left
    (cancelled, done or failed) is a 409."""
    campaign = _locked(session, campaign_id)
    state = status(session, campaign, now, lease_ttl_s).state
    if state in ("cancelled", "done", "failed"):
        raise Conflict(f"campaign {campaign_id} is {state}: only a campaign with work left can be paused")
    if campaign.paused_at is None:
        campaign.paused_at = now
    return campaign


def resume(session: Session, campaign_id: str) -> CampaignRow:
    """Lease the paused campaign's jobs again; resuming one that is not paused changes nothing, a cancelled one
    is a 409."""
    campaign = _locked(session, campaign_id)
    if campaign.cancelled_at is not None:
        raise Conflict(f"campaign {campaign_id} is cancelled: it cannot be resumed")
    campaign.paused_at = None
    return campaign


def set_priority(session: Session, campaign_id: str, priority: int) -> CampaignRow:
    """Change where the campaign's jobs come in the order of leasing, from the next lease request on."""
    campaign = _locked(session, campaign_id)
    campaign.priority = priority
    return campaign


def _failures(session: Session, campaign_id: str) -> dict[str, list[FailureReason]]:
    """Per device, the last errors of its failed jobs, most frequent first: a campaign that ends "done" with
    failures says why."""
    n = func.count().label("n")
    rows = session.execute(
        select(JobRow.device_id, JobRow.last_error, n)
        .where(JobRow.campaign_id == campaign_id, JobRow.state == "failed", JobRow.last_error.is_not(None))
        .group_by(JobRow.device_id, JobRow.last_error)
        .order_by(JobRow.device_id, n.desc(), JobRow.last_error)
    )
    reasons: dict[str, list[FailureReason]] = {}
    for device_id, error, jobs in rows:
        shown = reasons.setdefault(device_id, [])
        if len(shown) < MAX_FAILURE_REASONS and error is not None:
            shown.append(FailureReason(error=error, jobs=jobs))
    return reasons


@dataclass(frozen=True)
class _Activity:
    """What says whether a device is still working on a campaign."""

    online: bool | None = None
    last_result_at: datetime | None = None
    leased_since: datetime | None = None


def _activity(session: Session, campaign_id: str, now: datetime, lease_ttl_s: float) -> dict[str, _Activity]:
    """Per device id of the campaign: whether an agent of it was heard from lately (as ``latbench devices``
    says), when it last finished a job of the campaign, and since when it holds its oldest live lease."""
    jobs = JobRow.campaign_id == campaign_id
    last = dict(
        session.execute(
            select(JobRow.device_id, func.max(JobRow.finished_at)).where(jobs).group_by(JobRow.device_id)
        ).all()
    )
    live = and_(jobs, JobRow.state == "leased", JobRow.lease_expires_at >= now)
    held = dict(
        session.execute(
            select(JobRow.device_id, func.min(LeaseRow.granted_at))
            .join(LeaseRow, LeaseRow.id == JobRow.lease_id)
            .where(live)
            .group_by(JobRow.device_id)
        ).all()
    )
    members = select(CampaignDeviceRow.device_id).where(CampaignDeviceRow.campaign_id == campaign_id)
    seen = session.execute(
        select(AgentRow.device_id, func.max(AgentRow.last_seen))
        .where(AgentRow.device_id.in_(members))
        .group_by(AgentRow.device_id)
    ).all()
    online_since = online_after(now, lease_ttl_s)
    return {
        device_id: _Activity(last_seen >= online_since, last.get(device_id), held.get(device_id))
        for device_id, last_seen in seen
    }


def _progress(
    name: str,
    counts: dict[str, int],
    total: int,
    recent: int,
    since: datetime,
    now: datetime,
    failures: list[FailureReason] | None = None,
    activity: _Activity = _Activity(),
) -> DeviceProgress:
    """A device's progress; no ETA for a device known to be offline, whose past pace says nothing of when it
    will finish."""
    remaining = counts.get("queued", 0) + counts.get("leased", 0)
    elapsed_s = (now - max(since, now - RATE_WINDOW)).total_seconds()
    rate = recent / elapsed_s * 60 if recent and elapsed_s > 0 else None
    eta = 0.0 if remaining == 0 else (remaining / rate * 60 if rate and activity.online is not False else None)
    return DeviceProgress(
        device=name,
        queued=counts.get("queued", 0),
        leased=counts.get("leased", 0),
        done=counts.get("done", 0),
        failed=counts.get("failed", 0),
        total=total,
        rate_per_min=rate,
        eta_s=eta,
        failures=failures or [],
        online=activity.online,
        last_result_at=activity.last_result_at,
        leased_since=activity.leased_since,
    )


def _with_uncreated(counts: dict[str, int], created: int, samples: int, unbuilt: list[int]) -> dict[str, int]:
    """``counts`` plus the positions from ``created`` on, whose jobs do not exist yet: queued, or failed where
    their artifact (at a position of ``unbuilt``, sorted) could not be built."""
    failed = len(unbuilt) - bisect.bisect_left(unbuilt, created)
    queued = samples - created - failed
    return {**counts, "queued": counts.get("queued", 0) + queued, "failed": counts.get("failed", 0) + failed}


def _artifacts(session: Session, campaign: CampaignRow) -> tuple[int, list[str], str | None]:
    """How many of the campaign's artifacts are built, the errors of those whose build failed, and the reference
    model's build error (no job can run without it)."""
    ready, failed = 0, []
    for sha256, error in session.execute(
        select(ArtifactRow.sha256, ArtifactRow.error)
        .join(CampaignArchRow, CampaignArchRow.artifact_digest == ArtifactRow.key_digest)
        .where(CampaignArchRow.campaign_id == campaign.id)
    ):
        ready += sha256 is not None
        if sha256 is None and error is not None:
            failed.append(error)
    reference = session.execute(
        select(ArtifactRow.sha256, ArtifactRow.error).where(
            ArtifactRow.key_digest == REFERENCE_KEY.digest(campaign.format)
        )
    ).first()
    reference_error = reference.error if reference is not None and reference.sha256 is None else None
    return ready, failed, reference_error


def _failure(failed: list[str], reference_error: str | None, samples: int) -> str | None:
    if reference_error is not None:
        return f"cannot build the reference model: {reference_error}"
    if failed:
        return f"{len(failed)} of {samples} artifacts could not be built: {failed[0]}"
    return None


def _nothing_done(progress: list[DeviceProgress]) -> str | None:
    """A finished campaign none of whose jobs gave a result: what failed them, so that it ends ``failed`` saying
    why rather than ``done`` with nothing to export."""
    if any(p.done for p in progress):
        return None
    jobs = sum(p.failed for p in progress)
    reasons: dict[str, int] = {}
    for p in progress:
        for failure in p.failures:
            reasons[failure.error] = reasons.get(failure.error, 0) + failure.jobs
    devices = sum(1 for p in progress if p.failed)
    where = f"{jobs} job{'s' * (jobs != 1)} on {devices} device{'s' * (devices != 1)}"
    if not reasons:
        return f"every job failed ({where}): their leases expired or they erred without a message"
    return f"every job failed ({where}); the most frequent error: {max(reasons, key=lambda e: reasons[e])}"


def precision(campaign: CampaignRow) -> str | None:
    """The precision ``campaign`` measures its architectures at (``fp32``, ``int8``, ...); None for model files,
    measured as given."""
    return None if campaign.space == MODEL_SET else precision_of(campaign.format)


def status(session: Session, campaign: CampaignRow, now: datetime, lease_ttl_s: float) -> CampaignStatus:
    """Per-device progress; a job whose lease has expired counts as queued, since any agent may take it, and a
    job whose artifact could not be built counts as failed.

    A cancelled campaign is ``cancelled`` whatever its jobs' states (its queued jobs are never leased), a paused
    one ``paused`` unless it failed or nothing is left to do (it is then ``done`` or ``failed``). Otherwise
    the campaign is ``building`` while artifacts are still to be built, ``failed`` once an artifact build
    failed and nothing else is left to do (at once if the reference model failed, since then nothing can run),
    ``done`` when every job is done or failed (``failed`` if none gave a result, ``error`` saying what failed
    them), ``running`` otherwise; ``error`` names a failed build as soon as
    there is one. An adaptive campaign's device counts its budget as its total, and the campaign is done once
    every device has stopped (``adaptive_devices`` says why each did). A retired device's jobs left are never
    leased, so they do not keep a campaign from ending.
    """
    ready, failed, reference_error = _artifacts(session, campaign)
    unbuildable = and_(ArtifactRow.sha256.is_(None), ArtifactRow.error.is_not(None))
    state = case(
        (unbuildable, "failed"),
        (and_(JobRow.state == "leased", JobRow.lease_expires_at < now), "queued"),
        else_=JobRow.state,
    )
    counts: dict[str, dict[str, int]] = {}
    for device_id, job_state, n in session.execute(
        select(JobRow.device_id, state.label("effective_state"), func.count())
        .join(
            CampaignArchRow,
            and_(CampaignArchRow.campaign_id == JobRow.campaign_id, CampaignArchRow.position == JobRow.position),
        )
        .join(ArtifactRow, ArtifactRow.key_digest == CampaignArchRow.artifact_digest)
        .where(JobRow.campaign_id == campaign.id)
        .group_by(JobRow.device_id, "effective_state")
    ):
        counts.setdefault(device_id, {})[job_state] = n
    recent = dict(
        session.execute(
            select(JobRow.device_id, func.count())
            .where(JobRow.campaign_id == campaign.id, JobRow.finished_at >= now - RATE_WINDOW)
            .group_by(JobRow.device_id)
        ).all()
    )
    joined = session.execute(
        select(
            DeviceRow.id, DeviceRow.name, CampaignDeviceRow.joined_at, CampaignDeviceRow.created, DeviceRow.retired_at
        )
        .join(CampaignDeviceRow, CampaignDeviceRow.device_id == DeviceRow.id)
        .where(CampaignDeviceRow.campaign_id == campaign.id)
        .order_by(DeviceRow.name)
    ).all()
    unbuilt = sorted(
        session.scalars(
            select(CampaignArchRow.position)
            .join(ArtifactRow, ArtifactRow.key_digest == CampaignArchRow.artifact_digest)
            .where(CampaignArchRow.campaign_id == campaign.id, CampaignArchRow.position < campaign.samples, unbuildable)
        )
    )
    failures = _failures(session, campaign.id)
    active = _activity(session, campaign.id, now, lease_ttl_s)
    plan = AdaptivePlan(**campaign.adaptive) if campaign.adaptive is not None else None
    stepped = adaptive.devices(session, campaign.id) if plan is not None else None
    progress = [
        _progress(
            name,
            _with_uncreated(counts.get(device_id, {}), created, campaign.samples, unbuilt),
            campaign.samples if plan is None else plan.budget,
            recent.get(device_id, 0),
            joined_at,
            now,
            failures.get(device_id),
            active.get(device_id, _Activity()),
        )
        for device_id, name, joined_at, created, _ in joined
    ]
    joined_names = {name for _, name, _, _, _ in joined}
    retired = {name for _, name, _, _, retired_at in joined if retired_at is not None}
    waiting = [name for name in campaign.devices if name not in joined_names]
    before = {"queued": campaign.samples - len(failed), "failed": len(failed)}
    progress += [_progress(name, before, campaign.samples, 0, now, now) for name in waiting]
    finished = joined and not waiting and all(p.queued + p.leased == 0 for p in progress if p.device not in retired)
    archs = campaign.samples
    if stepped is not None:
        stopped = {d.device for d in stepped if d.state == "stopped"} | retired
        finished = finished and joined_names <= stopped
        archs = session.scalar(select(func.count()).where(CampaignArchRow.campaign_id == campaign.id)) or 0
    phase: CampaignState
    if campaign.cancelled_at is not None:
        phase = "cancelled"
        progress = [p.model_copy(update={"eta_s": None}) for p in progress]  # its queued jobs never run
    elif reference_error is not None or (failed and finished):
        phase = "failed"
    elif campaign.paused_at is not None and not finished:
        phase = "paused"
        progress = [p.model_copy(update={"eta_s": None}) for p in progress]  # its queued jobs wait for a resume
    elif ready + len(failed) < archs or artifact_store.reference_sha256(session, campaign.format) is None:
        phase = "building"
    elif finished:
        phase = "failed" if not any(p.done for p in progress) else "done"
    else:
        phase = "running"
    return CampaignStatus(
        campaign_id=campaign.id,
        name=campaign.name,
        space=campaign.space,
        runtime=campaign.runtime,
        provider=campaign.provider,
        batch=campaign.batch,
        threads=campaign.threads,
        samples=campaign.samples,
        created_at=campaign.created_at,
        precision=precision(campaign),
        artifacts_ready=ready,
        artifacts_failed=len(failed),
        state=phase,
        error=_failure(failed, reference_error, campaign.samples) or (_nothing_done(progress) if finished else None),
        devices=progress,
        priority=campaign.priority,
        paused_at=campaign.paused_at,
        adaptive=plan,
        adaptive_devices=stepped,
    )


def statuses(session: Session, now: datetime, lease_ttl_s: float) -> list[CampaignStatus]:
    campaigns = session.scalars(select(CampaignRow).order_by(CampaignRow.created_at, CampaignRow.id))
    return [status(session, campaign, now, lease_ttl_s) for campaign in campaigns]
