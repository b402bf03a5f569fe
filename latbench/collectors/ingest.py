"""Results: check a whole batch, then apply it in one transaction with one acknowledgement per result.

Exactly once: a result id already stored is a ``duplicate``; a measurement for a job that another result has
finished is ``dropped``; otherwise the first measurement of a job is ``stored`` and finishes it, even if its
lease expired and the job was leased again meanwhile. An error from the job's current lease counts as a
failure (``requeued`` or, at the campaign's limit, ``failed``); an error from a superseded lease is ``dropped``.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from latbench.collectors.leasing import fail, failures, requeue
from latbench.collectors.models import Agent, Campaign, Job, Lease, Result
from latbench.errors import Forbidden, InvalidRequest, NotFound
from latbench.protocol import AckStatus, ResultAck, ResultBatch, ResultItem


def _utc(value: datetime, what: str) -> datetime:
    """``value`` in UTC; a time without a zone is taken to be UTC already."""
    try:
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    except OverflowError as exc:
        raise InvalidRequest(f"{what} is out of range: {value.isoformat()}") from exc


def _row(item: ResultItem, job: Job, agent: Agent, now: datetime) -> Result:
    stats = item.stats.model_dump() if item.stats else {}
    return Result(
        id=str(item.result_id),
        job_id=job.id,
        lease_id=item.lease_id,
        agent_id=agent.id,
        received_at=now,
        measured_at=_utc(item.measured_at, "measured_at"),
        error=item.error,
        **stats,
        times_ms=np.asarray(item.times_ms, dtype="<f8").tobytes() if item.stats else None,
        warmup_runs=item.warmup_runs,
        attempts=item.attempts,
        stable=item.stable,
        flags=item.flags,
        attempt_flags=item.attempt_flags,
        ref_ratio=item.ref_ratio,
        wall_s=item.wall_s,
        runtime_version=item.runtime_version,
        optimization=item.optimization,
        latbench_version=item.latbench_version,
        numpy_version=item.numpy_version,
        state_before=item.state_before.model_dump() if item.state_before else None,
        state_after=item.state_after.model_dump() if item.state_after else None,
    )


def _check(batch: ResultBatch, agent: Agent, jobs: dict[str, Job], leases: dict[str, Lease]) -> None:
    """Refuse the whole batch if any result names an unknown job or lease, or a lease that is not the agent's."""
    for item in batch.results:
        lease = leases.get(item.lease_id)
        if item.job_id not in jobs:
            raise NotFound(f"result {item.result_id}: no job {item.job_id!r}")
        if lease is None:
            raise NotFound(f"result {item.result_id}: no lease {item.lease_id!r}")
        if lease.agent_id != agent.id:
            raise Forbidden(f"result {item.result_id}: lease {item.lease_id!r} belongs to another agent")
        if lease.job_id != item.job_id:
            raise InvalidRequest(
                f"result {item.result_id}: lease {item.lease_id!r} is not a lease of job {item.job_id!r}"
            )
        _utc(item.measured_at, f"result {item.result_id}: measured_at")


def _apply(session: Session, item: ResultItem, job: Job, lease: Lease, campaign: Campaign, agent: Agent,
           now: datetime) -> ResultAck:  # fmt: skip
    def ack(status: AckStatus, message: str) -> ResultAck:
        return ResultAck(result_id=item.result_id, status=status, message=message)

    if item.error is None:
        if job.state == "done":
            return ack("dropped", f"job {job.id} was already done by result {job.result_id}")
        session.add(_row(item, job, agent, now))
        lease.released_at = lease.released_at or now
        job.state, job.result_id, job.finished_at = "done", str(item.result_id), now
        job.lease_id = job.lease_expires_at = None
        return ack("stored", f"job {job.id} done")
    if job.state in ("done", "failed"):
        return ack("dropped", f"job {job.id} is already {job.state}")
    if job.lease_id != lease.id:
        return ack("dropped", f"lease {lease.id} is no longer current for job {job.id}; the error does not count")
    session.add(_row(item, job, agent, now))
    lease.released_at = now
    job.errors += 1
    job.last_error = item.error
    if failures(job) >= campaign.max_failures:
        fail(job, item.error, now)
        return ack("failed", f"job {job.id} failed after {failures(job)} failures")
    requeue(job)
    return ack("requeued", f"job {job.id} queued again ({failures(job)} of {campaign.max_failures} failures)")


def ingest(session: Session, agent: Agent, batch: ResultBatch, now: datetime) -> list[ResultAck]:
    """Apply ``batch`` from ``agent``; raise before writing anything if any result is not acceptable.

    The batch's jobs are locked first, so concurrent pushes of the same results apply one after the other and
    the later one sees the earlier one's rows.
    """
    items = batch.results
    locked = select(Job).where(Job.id.in_({i.job_id for i in items})).order_by(Job.id).with_for_update()
    jobs = {job.id: job for job in session.scalars(locked)}
    leases = {
        lease.id: lease for lease in session.scalars(select(Lease).where(Lease.id.in_({i.lease_id for i in items})))
    }
    _check(batch, agent, jobs, leases)
    campaign_ids = {job.campaign_id for job in jobs.values()}
    campaigns = {c.id: c for c in session.scalars(select(Campaign).where(Campaign.id.in_(campaign_ids)))}
    seen = set(session.scalars(select(Result.id).where(Result.id.in_({str(i.result_id) for i in items}))))
    acks = []
    for item in items:
        if str(item.result_id) in seen:
            acks.append(ResultAck(result_id=item.result_id, status="duplicate", message="already received"))
            continue
        job = jobs[item.job_id]
        ack = _apply(session, item, job, leases[item.lease_id], campaigns[job.campaign_id], agent, now)
        if ack.status != "dropped":
            seen.add(str(item.result_id))
        acks.append(ack)
    agent.last_seen = now
    return acks
