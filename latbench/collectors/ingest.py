"""Results: check a whole batch, then apply it in one transaction with one acknowledgement per result.

Exactly once: a result id already stored is a ``duplicate``; a measurement for a job that another result has
finished is ``dropped``; otherwise the first measurement of a job is ``stored`` and finishes it, even if its
lease expired and the job was leased again meanwhile. An error from the job's current lease counts as a
failure (``requeued`` or, at the campaign's limit, ``failed``); an error from a superseded lease is ``dropped``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import numpy as np
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from latbench.collectors.db import insert_new, touch
from latbench.collectors.models import Agent, Campaign, Job, Lease, Result
from latbench.errors import Forbidden, InvalidRequest, NotFound
from latbench.protocol import AckStatus, LatencyStatsModel, ResultAck, ResultBatch, ResultItem


def _utc(value: datetime, what: str) -> datetime:
    """``value`` in UTC; a time without a zone is taken to be UTC already."""
    try:
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    except OverflowError as exc:
        raise InvalidRequest(f"{what} is out of range: {value.isoformat()}") from exc


_STATS = tuple(LatencyStatsModel.model_fields)
_JOB = (Job.id, Job.state, Job.errors, Job.expirations, Job.last_error, Job.lease_id, Job.lease_expires_at,
        Job.result_id, Job.finished_at)  # fmt: skip
_JOB_CHANGES = ("state", "result_id", "finished_at", "lease_id", "lease_expires_at", "errors", "last_error")


def _row(item: ResultItem, job_id: str, agent: Agent, now: datetime) -> dict[str, Any]:
    stats = item.stats.model_dump() if item.stats else dict.fromkeys(_STATS)
    return {
        "id": str(item.result_id),
        "job_id": job_id,
        "lease_id": item.lease_id,
        "agent_id": agent.id,
        "received_at": now,
        "measured_at": _utc(item.measured_at, "measured_at"),
        "error": item.error,
        **stats,
        "times_ms": np.asarray(item.times_ms, dtype="<f8").tobytes() if item.stats else None,
        "warmup_runs": item.warmup_runs,
        "attempts": item.attempts,
        "stable": item.stable,
        "flags": item.flags,
        "attempt_flags": item.attempt_flags,
        "ref_ratio": item.ref_ratio,
        "wall_s": item.wall_s,
        "runtime_version": item.runtime_version,
        "optimization": item.optimization,
        "latbench_version": item.latbench_version,
        "numpy_version": item.numpy_version,
        "state_before": item.state_before.model_dump() if item.state_before else None,
        "state_after": item.state_after.model_dump() if item.state_after else None,
    }


def _check(batch: ResultBatch, agent: Agent, jobs: dict[str, dict[str, Any]], leases: dict[str, Any]) -> None:
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


class _Batch:
    """The rows a batch writes, gathered while its results are applied in order to plain copies of its jobs."""

    def __init__(self, agent: Agent, now: datetime, leases: dict[str, Any]) -> None:
        self.agent, self.now, self.leases = agent, now, leases
        self.results: list[dict[str, Any]] = []
        self.jobs: dict[str, dict[str, Any]] = {}
        self.released: dict[str, datetime] = {}

    def release(self, lease_id: str, keep_earlier: bool) -> None:
        earlier = self.released.get(lease_id, self.leases[lease_id].released_at)
        self.released[lease_id] = (earlier or self.now) if keep_earlier else self.now

    def apply(self, item: ResultItem, job: dict[str, Any], max_failures: int) -> ResultAck:
        def ack(status: AckStatus, message: str) -> ResultAck:
            return ResultAck(result_id=item.result_id, status=status, message=message)

        job_id, now = job["id"], self.now
        if item.error is None:
            if job["state"] == "done":
                return ack("dropped", f"job {job_id} was already done by result {job['result_id']}")
            self.results.append(_row(item, job_id, self.agent, now))
            self.release(item.lease_id, keep_earlier=True)
            job.update(state="done", result_id=str(item.result_id), finished_at=now, lease_id=None,
                       lease_expires_at=None)  # fmt: skip
            self.jobs[job_id] = job
            return ack("stored", f"job {job_id} done")
        if job["state"] in ("done", "failed"):
            return ack("dropped", f"job {job_id} is already {job['state']}")
        if job["lease_id"] != item.lease_id:
            superseded = f"lease {item.lease_id} is no longer current for job {job_id}"
            return ack("dropped", f"{superseded}; the error does not count")
        self.results.append(_row(item, job_id, self.agent, now))
        self.release(item.lease_id, keep_earlier=False)
        job.update(errors=job["errors"] + 1, last_error=item.error, lease_id=None, lease_expires_at=None)
        self.jobs[job_id] = job
        failed = job["errors"] + job["expirations"]
        if failed >= max_failures:
            job.update(state="failed", last_error=item.error, finished_at=now)
            return ack("failed", f"job {job_id} failed after {failed} failures")
        job["state"] = "queued"
        return ack("requeued", f"job {job_id} queued again ({failed} of {max_failures} failures)")

    def write(self, session: Session) -> None:
        """One multi-row INSERT of the results, then one executemany UPDATE each for the jobs and the leases."""
        if self.results:
            insert_new(session, Result, self.results)
        if self.jobs:
            changes = [{"b_id": job_id, **{k: job[k] for k in _JOB_CHANGES}} for job_id, job in self.jobs.items()]
            jobs = Job.__table__
            session.execute(update(jobs).where(jobs.c.id == bindparam("b_id")), changes)
        if self.released:
            leases = Lease.__table__
            session.execute(
                update(leases).where(leases.c.id == bindparam("b_id")),
                [{"b_id": lease_id, "released_at": at} for lease_id, at in self.released.items()],
            )


def ingest(session: Session, agent: Agent, batch: ResultBatch, now: datetime) -> list[ResultAck]:
    """Apply ``batch`` from ``agent``; raise before writing anything if any result is not acceptable.

    The batch's jobs are locked first, so concurrent pushes of the same results apply one after the other and
    the later one sees the earlier one's rows. Each table is read once and written once, whatever the batch's
    size: the results are applied in order to copies of the jobs' rows, and the outcome written in one go.
    """
    items = batch.results
    locked = (
        select(*_JOB, Campaign.max_failures)
        .join(Campaign, Campaign.id == Job.campaign_id)
        .where(Job.id.in_({i.job_id for i in items}))
        .order_by(Job.id)
        .with_for_update(of=Job)
    )
    jobs = {row.id: row._asdict() for row in session.execute(locked)}
    lease_rows = select(Lease.id, Lease.job_id, Lease.agent_id, Lease.released_at)
    leases = {row.id: row for row in session.execute(lease_rows.where(Lease.id.in_({i.lease_id for i in items})))}
    _check(batch, agent, jobs, leases)
    seen = set(session.scalars(select(Result.id).where(Result.id.in_({str(i.result_id) for i in items}))))
    writes = _Batch(agent, now, leases)
    acks = []
    for item in items:
        if str(item.result_id) in seen:
            acks.append(ResultAck(result_id=item.result_id, status="duplicate", message="already received"))
            continue
        job = jobs[item.job_id]
        ack = writes.apply(item, job, job["max_failures"])
        if ack.status != "dropped":
            seen.add(str(item.result_id))
        acks.append(ack)
    writes.write(session)
    touch(session, Agent, agent.id, last_seen=now)
    return acks
