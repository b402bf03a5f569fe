"""Results: check a whole batch, then apply it in one transaction with one acknowledgement per result.

Exactly once: a result id already stored is a ``duplicate``; a measurement for a job that another result has
finished is ``dropped``; otherwise the first measurement of a job is ``stored`` and finishes it, even if its
lease expired and the job was leased again meanwhile. An error from the job's current lease counts as a
failure (``requeued`` or, at the campaign's limit or where the agent says it is final, ``failed``); an error
from a superseded lease is ``dropped``.
A result id that another job's result already has is refused (409) with the batch, so that no job ever points
at another job's measurement.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import BindParameter, bindparam, insert, select, update
from sqlalchemy.orm import Session

from latbench import profiles
from latbench.collectors import metrics
from latbench.collectors.db import UTCDateTime, is_unique_violation, pipelined, run
from latbench.collectors.models import CampaignRow, JobRow, LeaseRow, ResultRow
from latbench.collectors.tokens import AgentRef
from latbench.errors import Conflict, Forbidden, InvalidRequest, NotFound
from latbench.protocol import AckStatus, LatencyStatsModel, ResultAck, ResultBatch, ResultItem


def _utc(value: datetime, what: str) -> datetime:
    """``value`` in UTC; a time without a zone is taken to be UTC already."""
    try:
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    except OverflowError as exc:
        raise InvalidRequest(f"{what} is out of range: {value.isoformat()}") from exc


_STATS = tuple(LatencyStatsModel.model_fields)
_JOB_CHANGES = ("state", "result_id", "finished_at", "lease_id", "lease_expires_at", "errors", "last_error")
_jobs, _leases, _campaigns, _results = JobRow.__table__, LeaseRow.__table__, CampaignRow.__table__, ResultRow.__table__
_JOB = [_jobs.c[name] for name in ("id", "state", "errors", "expirations", "last_error", "lease_id",
                                    "lease_expires_at", "result_id", "finished_at")]  # fmt: skip
_LEASE_IDS: BindParameter[str] = bindparam("lease_ids", expanding=True)
_LEASES_WITH_JOBS = (
    select(_leases.c.id.label("lease"), _leases.c.agent_id, _leases.c.released_at, *_JOB, _campaigns.c.max_failures)
    .select_from(_leases.join(_jobs).join(_campaigns, _campaigns.c.id == _jobs.c.campaign_id))
    .where(_leases.c.id.in_(_LEASE_IDS))
    .order_by(_jobs.c.id)
    .with_for_update(of=_jobs)
)
"""The leases a batch names, each with its job (locked) and the campaign's failure limit."""
_JOBS = (
    select(*_JOB, _campaigns.c.max_failures)
    .select_from(_jobs.join(_campaigns, _campaigns.c.id == _jobs.c.campaign_id))
    .where(_jobs.c.id.in_(bindparam("job_ids", expanding=True)))
    .order_by(_jobs.c.id)
    .with_for_update(of=_jobs)
)
_LEASES = select(_leases.c.id, _leases.c.job_id, _leases.c.agent_id, _leases.c.released_at).where(
    _leases.c.id.in_(_LEASE_IDS)
)
_KNOWN = select(_results.c.id, _results.c.job_id).where(_results.c.id.in_(bindparam("result_ids", expanding=True)))
_INSERT_RESULTS = insert(_results)
_UPDATE_JOB = update(_jobs).where(_jobs.c.id == bindparam("b_id"))
_RELEASE_AT = (
    update(_leases)
    .where(_leases.c.id.in_(bindparam("b_ids", expanding=True)))
    .values(released_at=bindparam("b_at", type_=UTCDateTime()))
)


def _row(item: ResultItem, job_id: str, agent: AgentRef, now: datetime) -> dict[str, Any]:
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
        "input_shapes": item.input_shapes,
        "state_before": item.state_before.model_dump() if item.state_before else None,
        "state_after": item.state_after.model_dump() if item.state_after else None,
        "load_ms": item.load_ms,
        "first_run_ms": item.first_run_ms,
        "peak_rss_mb": item.peak_rss_mb,
        "idle_waited_s": item.idle_waited_s,
        "idle_load": item.idle_load,
        "profile": profiles.encode(profiles.OpProfile.from_dict(item.profile.model_dump())) if item.profile else None,
    }


def _check(batch: ResultBatch, agent: AgentRef, jobs: dict[str, dict[str, Any]], leases: dict[str, Any]) -> None:
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


STATS_REL_TOL = 1e-9
"""How far stated statistics may be from those of ``times_ms``: summation order and rounding, nothing more."""


def _stats_agree(item: ResultItem) -> None:
    """Refuse statistics that are not those of the result's own ``times_ms``: the median, mean and extremes
    recomputed, the percentiles within the extremes. Mean (of values scaled to at most 1) and median are taken
    in ways that do not overflow near the largest float."""
    if item.stats is None or not item.times_ms:
        return
    times = np.sort(np.asarray(item.times_ms, dtype=np.float64))
    below, above = times[(len(times) - 1) // 2], times[len(times) // 2]
    recomputed = {
        "median_ms": float(below + (above - below) / 2),
        "mean_ms": float(np.mean(times / times[-1])) * float(times[-1]),
        "min_ms": float(times[0]),
        "max_ms": float(times[-1]),
    }
    for name, value in recomputed.items():
        stated = getattr(item.stats, name)
        if not math.isclose(stated, value, rel_tol=STATS_REL_TOL):
            raise InvalidRequest(f"result {item.result_id}: stats.{name} is {stated!r} but times_ms give {value!r}")
    for name in ("p90_ms", "p99_ms"):
        stated = getattr(item.stats, name)
        if not recomputed["min_ms"] <= stated <= recomputed["max_ms"]:
            raise InvalidRequest(
                f"result {item.result_id}: stats.{name} is {stated!r}, outside times_ms "
                f"({recomputed['min_ms']!r} to {recomputed['max_ms']!r})"
            )


class _Batch:
    """The rows a batch writes, gathered while its results are applied in order to plain copies of its jobs."""

    def __init__(self, agent: AgentRef, now: datetime, leases: dict[str, Any]) -> None:
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
        if item.final:
            job.update(state="failed", finished_at=now)
            return ack("failed", f"job {job_id} failed: the agent says another attempt would fail the same way")
        if failed >= max_failures:
            job.update(state="failed", finished_at=now)
            return ack("failed", f"job {job_id} failed after {failed} failures")
        job["state"] = "queued"
        return ack("requeued", f"job {job_id} queued again ({failed} of {max_failures} failures)")

    def write(self, session: Session) -> None:
        """One INSERT executemany of the results, one UPDATE executemany of the jobs, and one UPDATE of the leases
        per release time, sent together with the commit (the batch's last statements); a result id taken by
        another job's result refuses the batch."""
        by_time: dict[datetime, list[str]] = {}
        for lease_id, at in self.released.items():
            by_time.setdefault(at, []).append(lease_id)
        try:
            with pipelined(session, commit=True):
                if self.results:
                    run(session, _INSERT_RESULTS, self.results)
                if self.jobs:
                    changes = [{"b_id": i, **{k: job[k] for k in _JOB_CHANGES}} for i, job in self.jobs.items()]
                    run(session, _UPDATE_JOB, changes)
                for at, lease_ids in by_time.items():  # nearly always one time, ``now``: one statement
                    run(session, _RELEASE_AT, {"b_ids": lease_ids, "b_at": at})
        except Exception as exc:
            if not is_unique_violation(exc):
                raise
            taken = "another job's, or an earlier result of the same job"
            raise Conflict(f"a result id of this batch is already taken by a stored result ({taken}); "
                           "every result needs an id of its own") from None  # fmt: skip


def _own_ids(items: list[ResultItem], stored: dict[str, str]) -> None:
    """Refuse the batch if a result id is another job's: a stored result's (``stored``: id to job), or another
    result's of the batch. Acked as a duplicate, such a result would be dropped by its agent and never stored."""
    owner = dict(stored)
    for item in items:
        if owner.setdefault(str(item.result_id), item.job_id) != item.job_id:
            raise Conflict(f"result {item.result_id}: its id is already taken by another job's result; "
                           "every result needs an id of its own")  # fmt: skip


class _LeaseRow(NamedTuple):
    id: str
    job_id: str
    agent_id: str
    released_at: datetime | None


def _locked(session: Session, items: list[ResultItem]) -> tuple[dict[str, dict[str, Any]], dict[str, _LeaseRow]]:
    """The batch's jobs (locked, as dicts with their campaign's ``max_failures``) and leases, by id.

    One query reads each named lease with its job when every result names a lease of its own job, as agents'
    results do; otherwise the jobs and leases are read apart, so that ``_check`` can say what is wrong.
    """
    lease_ids = list({i.lease_id for i in items})
    jobs: dict[str, dict[str, Any]] = {}
    leases: dict[str, _LeaseRow] = {}
    for row in run(session, _LEASES_WITH_JOBS, {"lease_ids": lease_ids}):
        job = row._asdict()
        lease, agent_id, released_at = job.pop("lease"), job.pop("agent_id"), job.pop("released_at")
        leases[lease] = _LeaseRow(lease, job["id"], agent_id, released_at)
        jobs.setdefault(job["id"], job)
    if all(i.lease_id in leases and leases[i.lease_id].job_id == i.job_id for i in items):
        return jobs, leases
    jobs = {row.id: row._asdict() for row in run(session, _JOBS, {"job_ids": list({i.job_id for i in items})})}
    return jobs, {row.id: _LeaseRow(*row) for row in run(session, _LEASES, {"lease_ids": lease_ids})}


def ingest(session: Session, agent: AgentRef, batch: ResultBatch, now: datetime) -> list[ResultAck]:
    """Apply ``batch`` from ``agent``; raise before writing anything if any result is not acceptable.

    The batch's jobs are locked first (after the agent's row), so concurrent pushes of the same results apply
    one after the other and the later one sees the earlier one's rows. Each table is read once and written
    once, whatever the batch's size: the results are applied in order to copies of the jobs' rows, and the
    outcome written in one go. A stored measurement is the result its job names (a done job stays done), so
    only the ids of error results are looked up among the stored ones.
    """
    items = batch.results
    for item in items:
        _stats_agree(item)
    jobs, leases = _locked(session, items)
    _check(batch, agent, jobs, leases)
    errors = list({str(i.result_id) for i in items if i.error is not None})
    stored = {result_id: job_id for result_id, job_id in run(session, _KNOWN, {"result_ids": errors})} if errors else {}
    _own_ids(items, stored)
    seen = set(stored)
    writes = _Batch(agent, now, leases)
    acks = []
    for item in items:
        result_id, job = str(item.result_id), jobs[item.job_id]
        if result_id in seen or (item.error is None and job["result_id"] == result_id):
            acks.append(ResultAck(result_id=item.result_id, status="duplicate", message="already received"))
            continue
        ack = writes.apply(item, job, job["max_failures"])
        if ack.status != "dropped":
            seen.add(result_id)
        acks.append(ack)
    writes.write(session)
    metrics.RESULTS.count(ack.status for ack in acks)
    return acks
