"""Leases: hand an agent up to k jobs of its device, renew them on heartbeat, take them back on release.

A job is eligible when it is queued, or leased under a lease that has expired; taking an expired one counts the
expiry against the job's failure limit. Concurrent requests never get the same job: PostgreSQL skips rows that
another transaction has locked (``FOR UPDATE SKIP LOCKED``), and SQLite runs write transactions one at a time
(``BEGIN IMMEDIATE``). To rule out deadlocks on PostgreSQL, transactions that wait for row locks take them in
one order: the agent's row (``tokens.authenticate_agent`` marks it seen), then jobs by id; a lease request
never waits for a job, it skips locked ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import and_, bindparam, insert, or_, select, update
from sqlalchemy.orm import Session

from latbench.collectors import artifact_store, metrics
from latbench.collectors.db import CACHE_INFO, JOINED_INFO, UTCDateTime, insert_one, new_id, pipelined, run
from latbench.collectors.models import ArtifactRow, CampaignArchRow, CampaignDeviceRow, CampaignRow, JobRow, LeaseRow
from latbench.collectors.tokens import AgentRef
from latbench.protocol import MAX_JOBS_PER_LEASE, ArtifactFormat, JobSpec, LeaseRequest, MeasurementSettings
from latbench.spaces import get_space


def failures(job: JobRow) -> int:
    return job.errors + job.expirations


def _offers(agent: AgentRef, wanted: list[str] | None) -> dict[str, set[str]]:
    """Runtime name -> providers, for the runtimes the agent enrolled with (narrowed to ``wanted`` if given)."""
    offers = {offer["name"]: set(offer["providers"]) for offer in agent.runtimes}
    return {name: providers for name, providers in offers.items() if wanted is None or name in wanted}


def _campaign_rows(session: Session, ids: Sequence[str]) -> dict[str, CampaignRow]:
    """The campaigns of ``ids``. What leasing reads of a campaign never changes once created (its cancellation,
    pause, priority and devices are read from the store on each request), so each is loaded once per process and
    kept in the store's cache."""
    known: dict[str, CampaignRow] = session.info.setdefault(CACHE_INFO, {}).setdefault("campaigns", {})
    missing = [campaign_id for campaign_id in set(ids) if campaign_id not in known]
    if missing:
        for campaign in session.scalars(select(CampaignRow).where(CampaignRow.id.in_(missing))):
            session.expunge(campaign)
            known[campaign.id] = campaign
    return {campaign_id: known[campaign_id] for campaign_id in ids}


def _campaigns(session: Session, agent: AgentRef, wanted: list[str] | None) -> list[CampaignRow]:
    """The campaigns this agent may work on (its runtime and provider, and its device if the campaign names any),
    in the order they are served: higher priority first, then oldest first."""
    offers = _offers(agent, wanted)
    if not offers:
        return []
    offering = {row.id: row for row in run(session, _CAMPAIGNS_OFFERING, {"runtimes": list(offers)})}
    found = _campaign_rows(session, list(offering)).values()
    chosen = []
    for campaign in found:
        devices = offering[campaign.id].devices
        if campaign.provider in offers[campaign.runtime] and (not devices or agent.device_name in devices):
            chosen.append(campaign)
    return sorted(chosen, key=lambda c: (-offering[c.id].priority, c.created_at, c.id))


def _join(session: Session, campaign_ids: Sequence[str], device_id: str, now: datetime) -> None:
    """Make the device a member of the campaigns it has not joined yet (one transaction wins each join); its jobs
    come later, a batch at a time, as ``_extend`` finds them needed.

    A membership once committed is never undone, so the store's ``joined`` set remembers those this process
    has read back from the database, and a device's later requests skip the query. Memberships are taken in
    the order of ``campaign_ids`` (the order ``_extend`` locks them in), so concurrent requests never deadlock;
    a priority changed between two concurrent requests of one device could order them differently, which at
    worst makes PostgreSQL abort one request (the agent asks again).
    """
    known: set[tuple[str, str]] = session.info.setdefault(JOINED_INFO, set())
    unknown = [campaign_id for campaign_id in campaign_ids if (campaign_id, device_id) not in known]
    if not unknown:
        return
    joined = set(
        session.scalars(
            select(CampaignDeviceRow.campaign_id).where(
                CampaignDeviceRow.device_id == device_id, CampaignDeviceRow.campaign_id.in_(unknown)
            )
        )
    )
    known.update((campaign_id, device_id) for campaign_id in joined)
    for campaign_id in unknown:
        if campaign_id not in joined:
            membership = {"campaign_id": campaign_id, "device_id": device_id, "joined_at": now, "created": 0}
            insert_one(session, CampaignDeviceRow, membership)


JOB_BATCH = 16
"""Jobs a device gets in a campaign at a time, beyond what the lease request in hand needs."""
JOBS_PER_REQUEST = 4 * MAX_JOBS_PER_LEASE
"""The most jobs one lease request creates, however many campaigns and architectures the agent's runtimes
reach: creating every job of every campaign at the first request once let one agent that claimed every
runtime insert 124,879 rows in one transaction while honest agents waited."""


def _extend(session: Session, campaign: CampaignRow, device_id: str, wanted: int, budget: int) -> int:
    """Create the device's next jobs of ``campaign`` (at least ``wanted``, at most ``budget``); return how many.

    The membership row counts the positions created so far and is locked while they are added, so concurrent
    requests of one device never create a position twice. A membership with every position created stays so,
    and the store's cache remembers it once read back from the database.
    """
    complete: set[tuple[str, str]] = session.info.setdefault(CACHE_INFO, {}).setdefault("complete", set())
    if budget <= 0 or (campaign.id, device_id) in complete:
        return 0
    membership = (CampaignDeviceRow.campaign_id == campaign.id, CampaignDeviceRow.device_id == device_id)
    created = session.scalar(select(CampaignDeviceRow.created).where(*membership).with_for_update())
    if created is None:
        return 0
    if created >= campaign.samples:
        complete.add((campaign.id, device_id))
        return 0
    count = min(campaign.samples - created, max(wanted, JOB_BATCH), budget)
    session.execute(
        insert(JobRow),
        [
            {"id": new_id(), "campaign_id": campaign.id, "device_id": device_id, "position": position,
             "state": "queued", "leases": 0, "errors": 0, "expirations": 0}
            for position in range(created, created + count)
        ],
    )  # fmt: skip
    session.execute(update(CampaignDeviceRow).where(*membership).values(created=created + count))
    return count


class _Specs:
    """What a campaign's job specs share, worked out once per lease request."""

    def __init__(self, campaign: CampaignRow, reference: str) -> None:
        self.campaign = campaign
        self.space = get_space(campaign.space)
        self.settings = MeasurementSettings(**campaign.settings)
        self.reference = reference
        self.input_shapes = campaign.input_shapes or {}

    def spec(self, job_id: str, attempt: int, arch: str, sha256: str, size: int, lease_id: str,
             expires_at: datetime) -> JobSpec:  # fmt: skip
        campaign = self.campaign
        return JobSpec(
            job_id=job_id,
            lease_id=lease_id,
            campaign_id=campaign.id,
            space=campaign.space,
            arch=arch,
            arch_index=self.space.official_index(arch),
            runtime=campaign.runtime,
            provider=campaign.provider,
            batch=campaign.batch,
            threads=campaign.threads,
            resolution=campaign.resolution,
            classes=campaign.classes,
            opset=campaign.opset,
            artifact_sha256=sha256,
            artifact_bytes=size,
            artifact_format=cast(ArtifactFormat, campaign.format),  # checked when the campaign was created
            input_shapes=self.input_shapes.get(arch),
            reference_sha256=self.reference,
            settings=self.settings,
            attempt=attempt,
            expires_at=expires_at,
        )


_jobs = JobRow.__table__
_archs = CampaignArchRow.__table__
_artifacts = ArtifactRow.__table__
_campaigns_t = CampaignRow.__table__
_CAMPAIGNS_OFFERING = select(_campaigns_t.c.id, _campaigns_t.c.priority, _campaigns_t.c.devices).where(
    _campaigns_t.c.runtime.in_(bindparam("runtimes", expanding=True)),
    _campaigns_t.c.cancelled_at.is_(None),
    _campaigns_t.c.paused_at.is_(None),
)
"""The campaigns offering any of the runtimes, neither cancelled nor paused, with their priorities and the devices
they name: read on every request, so a cancellation, pause, resume, new priority or renamed device takes effect
at once on every replica, whatever campaign rows their caches hold."""
_NOW = bindparam("now", type_=UTCDateTime())
_JOB_COLUMNS = ("id", "position", "state", "leases", "errors", "expirations", "last_error")
_CANDIDATES = (
    select(*[_jobs.c[name] for name in _JOB_COLUMNS])
    .where(
        _jobs.c.campaign_id == bindparam("campaign_id"),
        _jobs.c.device_id == bindparam("device_id"),
        _jobs.c.position > bindparam("after"),
        or_(_jobs.c.state == "queued", and_(_jobs.c.state == "leased", _jobs.c.lease_expires_at < _NOW)),
    )
    .order_by(_jobs.c.position)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
"""A device's next leasable jobs of one campaign after a position, read and locked (skipping rows others hold)
from the jobs table alone: in the campaign's (campaign, device, position) index order, so the database stops
after ``limit`` rows however many jobs the campaign has. Joining the architectures and artifacts here instead
made PostgreSQL, with the statistics of a freshly filled table, scan a device's every job against every
architecture of the campaign on each request (100 ms at 400 architectures)."""
_ARCHS = select(_archs.c.position, _archs.c.arch, _archs.c.artifact_digest).where(
    _archs.c.campaign_id == bindparam("campaign_id")
)
_BUILT = select(_artifacts.c.key_digest, _artifacts.c.sha256, _artifacts.c.size).where(
    _artifacts.c.key_digest.in_(bindparam("digests", expanding=True)), _artifacts.c.sha256.is_not(None)
)
_INSERT_LEASES = insert(LeaseRow.__table__)
_UPDATE_JOB = update(_jobs).where(_jobs.c.id == bindparam("b_id"))


def _archs_of(session: Session, campaign_id: str, positions: Sequence[int] = ()) -> dict[int, tuple[str, str]]:
    """Position -> (arch, artifact digest) of a campaign; read once per process, since a position never changes,
    and again when one of ``positions`` is missing (an adaptive campaign appends positions)."""
    cache = session.info.setdefault(CACHE_INFO, {}).setdefault("archs", {})
    if campaign_id not in cache or any(p not in cache[campaign_id] for p in positions):
        rows = run(session, _ARCHS, {"campaign_id": campaign_id})
        cache[campaign_id] = {position: (arch, digest) for position, arch, digest in rows}
    return cache[campaign_id]


def _built(session: Session, digests: Sequence[str]) -> dict[str, tuple[str, int]]:
    """Digest -> (sha256, size) of those of ``digests`` whose artifact is built; a built artifact never changes,
    so each is read from the store until it is built and from the cache after."""
    cache: dict[str, tuple[str, int]] = session.info.setdefault(CACHE_INFO, {}).setdefault("built", {})
    unknown = [d for d in set(digests) if d not in cache]
    if unknown:
        cache.update({digest: (sha256, size) for digest, sha256, size in run(session, _BUILT, {"digests": unknown})})
    return {d: cache[d] for d in digests if d in cache}


def grant(session: Session, agent: AgentRef, request: LeaseRequest, now: datetime, ttl_s: float) -> list[JobSpec]:
    """Lease up to ``request.max_jobs`` jobs to ``agent``, campaign by campaign (higher priority first, then
    oldest first), in architecture order; a campaign's jobs wait until the reference model in its format is
    built, and each job until its own artifact is, since the job names both. A device's jobs are created as its
    candidates run short (``_extend``), at most ``JOBS_PER_REQUEST`` per request.

    Each round reads and locks a campaign's next candidates; the leases are inserted and the jobs updated at
    the end, with one executemany each sent together with the commit (these are the request's last
    statements); candidates whose artifact is not built yet stay as they are.
    """
    references: dict[str, str | None] = {}
    campaigns: list[CampaignRow] = []
    for campaign in _campaigns(session, agent, request.runtimes):
        if campaign.format not in references:
            references[campaign.format] = artifact_store.reference_sha256(session, campaign.format)
        if references[campaign.format] is not None:
            campaigns.append(campaign)
    if not campaigns:
        return []
    device_id = agent.device_id
    _join(session, [c.id for c in campaigns], device_id, now)
    expires = now + timedelta(seconds=ttl_s)
    specs: list[JobSpec] = []
    leases: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    budget = JOBS_PER_REQUEST
    for campaign in campaigns:
        reference = references[campaign.format]
        assert reference is not None
        shared = _Specs(campaign, reference)
        after = -1
        while len(specs) < request.max_jobs:
            limit = request.max_jobs - len(specs)
            wanted = {"campaign_id": campaign.id, "device_id": device_id, "now": now, "after": after, "limit": limit}
            rows = run(session, _CANDIDATES, wanted).all()
            after = rows[-1].position if rows else after
            archs = _archs_of(session, campaign.id, [row.position for row in rows])
            built = _built(session, [archs[row.position][1] for row in rows])
            for job_id, position, state, leases_before, errors, expirations, last_error in rows:
                arch, digest = archs[position]
                if digest not in built:
                    continue
                if state == "leased":
                    expirations += 1
                    metrics.LEASE_EXPIRIES.inc()
                    if errors + expirations >= campaign.max_failures:
                        last = f"; last error: {last_error}" if last_error else ""
                        changes.append({"b_id": job_id, "state": "failed", "leases": leases_before,
                                        "expirations": expirations, "last_error": f"lease expired {expirations} "
                                        f"times{last}", "finished_at": now, "lease_id": None,
                                        "lease_expires_at": None})  # fmt: skip
                        continue
                lease_id = new_id()
                leases.append({"id": lease_id, "job_id": job_id, "agent_id": agent.id, "granted_at": now,
                               "expires_at": expires, "released_at": None})  # fmt: skip
                changes.append({"b_id": job_id, "state": "leased", "leases": leases_before + 1,
                                "expirations": expirations, "last_error": last_error, "finished_at": None,
                                "lease_id": lease_id, "lease_expires_at": expires})  # fmt: skip
                sha256, size = built[digest]
                specs.append(shared.spec(job_id, leases_before + 1, arch, sha256, size, lease_id, expires))
            if len(rows) < limit:
                created = _extend(session, campaign, device_id, request.max_jobs - len(specs), budget)
                budget -= created
                if not created:
                    break
    with pipelined(session, commit=True):
        if leases:
            run(session, _INSERT_LEASES, leases)
        if changes:
            run(session, _UPDATE_JOB, changes)
    metrics.LEASES_GRANTED.inc(len(specs))
    return specs


def fail(job: JobRow, error: str, now: datetime) -> None:
    job.state, job.last_error, job.finished_at = "failed", error, now
    job.lease_id = job.lease_expires_at = None


def requeue(job: JobRow) -> None:
    job.state = "queued"
    job.lease_id = job.lease_expires_at = None


def _current(session: Session, agent: AgentRef, lease_ids: list[str]) -> list[tuple[LeaseRow, JobRow]]:
    """The named leases that are still the agent's current lease of an unfinished job, their jobs locked."""
    rows = session.execute(
        select(LeaseRow, JobRow)
        .join(JobRow, JobRow.id == LeaseRow.job_id)
        .where(LeaseRow.id.in_(lease_ids), LeaseRow.agent_id == agent.id)
        .order_by(JobRow.id)
        .with_for_update(of=JobRow)
    ).all()
    return [(lease, job) for lease, job in rows if job.lease_id == lease.id and job.state == "leased"]


_leases_t = LeaseRow.__table__
_CURRENT = (
    select(_jobs.c.id, _jobs.c.lease_id, _jobs.c.campaign_id, _leases_t.c.granted_at)
    .select_from(_leases_t.join(_jobs, _jobs.c.id == _leases_t.c.job_id))
    .where(
        _leases_t.c.id.in_(bindparam("lease_ids", expanding=True)),
        _leases_t.c.agent_id == bindparam("agent_id"),
        _jobs.c.lease_id == _leases_t.c.id,
        _jobs.c.state == "leased",
    )
    .order_by(_jobs.c.id)
    .with_for_update(of=_jobs)
)
"""The agent's named leases that are still their job's current lease, the jobs locked in id order. Joined on
the lease's job (the jobs' primary key): joined on the jobs' ``lease_id`` instead, which no index covers,
PostgreSQL scanned every job of the table on each heartbeat (24 ms at 15,000 jobs)."""
_EXPIRES = bindparam("b_expires", type_=UTCDateTime())
_RENEW_JOBS = update(_jobs).where(_jobs.c.id.in_(bindparam("b_ids", expanding=True))).values(lease_expires_at=_EXPIRES)
_RENEW_LEASES = (
    update(_leases_t).where(_leases_t.c.id.in_(bindparam("b_ids", expanding=True))).values(expires_at=_EXPIRES)
)


LEASE_AGE_FACTOR = 4
"""An attempt of a measurement takes at most about twice its ``max_time_s`` (warm-up and timed runs each stop at
it, give or take one run); a lease may be renewed for twice that again."""
JOB_MARGIN_S = 600.0
"""Per job, beyond its timing: loading the model (a compiler may take minutes), waiting for an idle machine (the
agent's ``--wait-idle-max``, 60 s by default), reference probes and a profile."""
GRANT_MARGIN_S = 3600.0
"""Per lease request, beyond its jobs: downloading their artifacts, and any slowness the bounds above missed."""


def job_bound_s(settings: MeasurementSettings) -> float:
    """The longest a healthy agent may take to measure a job with ``settings``, generously."""
    attempts = settings.max_attempts + (1 if settings.profile_runs else 0)
    return LEASE_AGE_FACTOR * attempts * (settings.max_time_s + settings.cooldown_s) + JOB_MARGIN_S


def _bounds(session: Session, campaign_ids: Sequence[str]) -> list[float]:
    rows = _campaign_rows(session, campaign_ids)
    return [job_bound_s(MeasurementSettings(**rows[campaign_id].settings)) for campaign_id in campaign_ids]


def _overdue(session: Session, agent: AgentRef, current: Sequence[Any], now: datetime) -> set[str]:
    """The leases among ``current`` held longer than the jobs leased with them could take a healthy agent: the
    ``GRANT_MARGIN_S`` plus ``job_bound_s`` of each job of their lease request, measured one after the other.

    Such a lease is not renewed, so a wedged agent (a runtime call that never returns, its heartbeat alive)
    cannot hold its jobs for ever. Most heartbeats find no lease older than its own job's bound plus the
    margin and read nothing more; only then are the other jobs of its lease request read.
    """
    own = dict(zip([row.lease_id for row in current], _bounds(session, [row.campaign_id for row in current])))
    suspects = [row for row in current if (now - row.granted_at).total_seconds() > own[row.lease_id] + GRANT_MARGIN_S]
    overdue: set[str] = set()
    for granted_at in {row.granted_at for row in suspects}:
        granted = session.scalars(
            select(JobRow.campaign_id)
            .join(LeaseRow, LeaseRow.job_id == JobRow.id)
            .where(LeaseRow.agent_id == agent.id, LeaseRow.granted_at == granted_at)
        ).all()
        if (now - granted_at).total_seconds() > GRANT_MARGIN_S + sum(_bounds(session, granted)):
            overdue.update(row.lease_id for row in suspects if row.granted_at == granted_at)
    return overdue


def renew(
    session: Session, agent: AgentRef, lease_ids: list[str], now: datetime, ttl_s: float
) -> tuple[list[str], list[str], datetime]:
    """Extend the agent's current leases among ``lease_ids``, but for those held too long (``_overdue``); return
    (renewed, lost, new expiry). A lease not renewed expires, and its job goes back to the queue, the expiry
    counted against it.

    Every agent heartbeats every few seconds with all the leases it holds, so this is three prebuilt statements
    whatever their number (read and lock, then one UPDATE each for the jobs and the leases, sent together with
    the commit), not ORM objects.
    """
    expires = now + timedelta(seconds=ttl_s)
    wanted = list(dict.fromkeys(lease_ids))
    current = run(session, _CURRENT, {"lease_ids": wanted, "agent_id": agent.id}).all() if wanted else []
    overdue = _overdue(session, agent, current, now) if current else set()
    kept = [row for row in current if row.lease_id not in overdue]
    if kept:
        with pipelined(session, commit=True):
            run(session, _RENEW_JOBS, {"b_ids": [row.id for row in kept], "b_expires": expires})
            run(session, _RENEW_LEASES, {"b_ids": [row.lease_id for row in kept], "b_expires": expires})
    renewed = {row.lease_id for row in kept}
    return [i for i in wanted if i in renewed], [i for i in wanted if i not in renewed], expires


def release(session: Session, agent: AgentRef, lease_ids: list[str], now: datetime) -> tuple[list[str], list[str]]:
    """Put the jobs of the agent's current leases among ``lease_ids`` back in the queue, not counted as failures."""
    wanted = list(dict.fromkeys(lease_ids))
    released = set()
    for lease, job in _current(session, agent, wanted):
        lease.released_at = now
        requeue(job)
        released.add(lease.id)
    metrics.LEASES_RELEASED.inc(len(released))
    return [i for i in wanted if i in released], [i for i in wanted if i not in released]


def release_all(session: Session, agent_id: str, now: datetime) -> int:
    """Put every job the agent holds back in the queue, not counted as failures (its identity changed hands or
    was revoked); return how many."""
    rows = session.execute(
        select(LeaseRow, JobRow)
        .join(JobRow, JobRow.id == LeaseRow.job_id)
        .where(LeaseRow.agent_id == agent_id, JobRow.lease_id == LeaseRow.id, JobRow.state == "leased")
        .order_by(JobRow.id)
        .with_for_update(of=JobRow)
    ).all()
    for lease, job in rows:
        lease.released_at = now
        requeue(job)
    metrics.LEASES_RELEASED.inc(len(rows))
    return len(rows)
