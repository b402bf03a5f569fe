"""``GET /metrics`` for Prometheus: the fleet's state read from the store at each scrape, and this process's
counters (``latbench.collectors.metrics``); ``RequestMetrics`` counts and times every request.

The state is read with a fixed number of aggregate queries whatever the number of campaigns, so a scrape costs
about one pass over the jobs table and counts of the results and artifacts (about 0.1 s with 100,000 results).
Campaigns are counted in a coarse state of their own, read from those aggregates: ``campaign status``'s full state
takes several queries per campaign. Every label has a bounded set of values: route templates, never paths;
campaign states, never campaign ids or device names.

The metrics name devices' and campaigns' counts, so a scrape needs a metrics token (``latbench token create
--kind metrics``, which can do nothing else) or an admin token, unless the collector was started with
``LATBENCH_METRICS_PUBLIC=1`` for a scraper on a private network.
"""

from __future__ import annotations

import logging
import time
from collections import Counter as Tally
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from latbench import __version__
from latbench.artifacts import REFERENCE_KEY
from latbench.collectors import metrics, tokens
from latbench.collectors.enrollment import online_after
from latbench.collectors.http_semantics import JsonBodyRoute
from latbench.collectors.metrics import Family, LabelSet, gauge
from latbench.collectors.models import (
    AdaptiveDeviceRow,
    AgentRow,
    ArtifactRow,
    CampaignArchRow,
    CampaignDeviceRow,
    CampaignRow,
    DeviceRow,
    JobRow,
    LeaseRow,
    ResultRow,
    TokenRow,
)
from latbench.collectors.routes import AdminToken, Ctx, token_info
from latbench.collectors.schema import SchemaWatch
from latbench.errors import LatbenchError
from latbench.protocol import API_PREFIX, AdminTokenCreate, EnrollmentTokenCreated, EnrollmentTokenInfo

router = APIRouter(route_class=JsonBodyRoute)
METRICS_PATH = "/metrics"
PUBLIC_ENV = "LATBENCH_METRICS_PUBLIC"
"""Set to 1 to serve ``/metrics`` without a token (to a scraper on a private network); 0 or unset: a token."""
TOKENS_PATH = API_PREFIX + "/admin/metrics-tokens"
JOB_STATES = ("pending", "leased", "done", "failed")
CAMPAIGN_STATES = ("active", "paused", "cancelled", "finished")
_bearer = HTTPBearer(auto_error=False)
log = logging.getLogger(__name__)
"""The audit lines of metrics tokens, as ``routes`` writes those of the other tokens."""


def public_from_env(value: str | None) -> bool:
    """``LATBENCH_METRICS_PUBLIC``'s value as a switch; anything but 1, 0 or nothing is refused (a typo must not
    leave the metrics open, or closed to a scraper, unnoticed)."""
    if value not in (None, "", "0", "1"):
        raise LatbenchError(f"{PUBLIC_ENV} must be 1 (serve /metrics without a token) or 0, not {value!r}")
    return value == "1"


def _scraper(
    request: Request, c: Ctx, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """Admits a live metrics or admin token (401 or 403 otherwise), or anyone on a collector serving metrics
    publicly."""
    if request.app.state.metrics_public:
        return
    with c.store.read() as session:
        tokens.authenticate(session, credentials.credentials if credentials else None, ("metrics", "admin"), c.clock())


@router.get(METRICS_PATH, include_in_schema=False, dependencies=[Depends(_scraper)])
def scrape(request: Request, c: Ctx) -> Response:
    """Every metric in the Prometheus text format 0.0.4 (``docs/collector.md``, "Metrics", lists them)."""
    watch: SchemaWatch = request.app.state.schema
    with c.store.read() as session:
        families = store_families(session, c.clock(), c.lease_ttl_s)
    info: dict[LabelSet, float] = {(("schema", watch.found or "none"), ("serves", watch.expected)): 1.0}
    families += [
        gauge("latbench_build_info", "The latbench release this process runs.", {(("version", __version__),): 1.0}),
        gauge("latbench_store_schema_info", "The store's schema revision as last read, and the one served.", info),
        *metrics.this_process(),
    ]
    return Response(metrics.exposition(families), media_type=metrics.CONTENT_TYPE)


def store_families(session: Session, now: datetime, lease_ttl_s: float) -> list[Family]:
    """The gauges read from the store at ``now``."""
    fleet = _fleet(session, now)
    agents = Tally({"online": 0, "offline": 0, "revoked": 0})
    agents.update(dict(session.execute(_agent_states(now, lease_ttl_s)).all()))
    artifacts: Tally[str] = Tally({"built": 0, "pending": 0, "failed": 0, "pruned": 0})
    artifact_bytes = 0
    for state, n, size in session.execute(_ARTIFACT_STATES):
        artifacts[state] = n
        artifact_bytes += (size or 0) if state == "built" else 0
    return [
        gauge(
            "latbench_jobs",
            "Jobs by their campaign's state and their own: pending (queued, its lease lapsed, or not created yet), "
            "leased, done or failed (a model that cannot be built fails its jobs).",
            _labelled(fleet.jobs, ("campaign_state", "state")),
        ),
        gauge(
            "latbench_campaigns",
            "Campaigns by a coarse state: active (building or running), paused, cancelled, or finished (no job "
            "left to run).",
            _labelled(fleet.campaigns, ("state",)),
        ),
        gauge(
            "latbench_agents",
            "Agents by state: online (heard from lately, as `latbench devices` says), offline, or revoked.",
            _labelled(agents, ("state",)),
        ),
        gauge(
            "latbench_devices",
            "Devices enrolled, by state: live, or retired (`latbench devices retire`).",
            _labelled(
                {"live": 0, "retired": 0, **{str(state): n for state, n in session.execute(_DEVICES)}}, ("state",)
            ),
        ),
        gauge(
            "latbench_leases_outstanding",
            "Live leases: jobs an agent holds now.",
            sum(n for (_, job_state), n in fleet.jobs.items() if job_state == "leased"),
        ),
        gauge(
            "latbench_oldest_lease_age_seconds",
            "How long the oldest live lease has been held (0: none).",
            (now - fleet.oldest_lease).total_seconds() if fleet.oldest_lease is not None else 0.0,
        ),
        gauge(
            "latbench_last_finished_timestamp_seconds",
            "When a job was last done or failed (Unix time; 0: never).",
            fleet.last_finished.timestamp() if fleet.last_finished is not None else 0.0,
        ),
        gauge(
            "latbench_results_stored",
            "Results in the store: measurements and error reports.",
            session.scalar(_RESULTS) or 0,
        ),
        gauge(
            "latbench_artifacts",
            "Model files asked for (built by the collector, or uploaded), by state: built, pending, failed, or "
            "pruned (its file deleted by `latbench collector prune`).",
            _labelled(artifacts, ("state",)),
        ),
        gauge("latbench_artifact_bytes", "Bytes of the built and uploaded model files kept.", float(artifact_bytes)),
    ]


def _labelled(counts: Any, names: tuple[str, ...]) -> dict[LabelSet, float]:
    """``{value or values: count}`` as ``gauge`` takes it."""
    return {tuple(zip(names, k if isinstance(k, tuple) else (k,))): float(v) for k, v in counts.items()}


_DEVICE_STATE = case((DeviceRow.retired_at.is_(None), "live"), else_="retired").label("device_state")
_DEVICES = select(_DEVICE_STATE, func.count()).group_by("device_state")
_RESULTS = select(func.count()).select_from(ResultRow)
_UNBUILDABLE = and_(ArtifactRow.sha256.is_(None), ArtifactRow.error.is_not(None))
_ARTIFACT_STATE = case(
    (and_(ArtifactRow.sha256.is_not(None), ArtifactRow.file_name.is_(None)), "pruned"),
    (ArtifactRow.sha256.is_not(None), "built"),
    (ArtifactRow.error.is_not(None), "failed"),
    else_="pending",
).label("artifact_state")
"""A pruned artifact keeps its hash and loses its file (``latbench collector prune``)."""
_ARTIFACT_STATES = select(_ARTIFACT_STATE, func.count(), func.sum(ArtifactRow.size)).group_by("artifact_state")
_UNBUILT_POSITIONS = (
    select(CampaignArchRow.campaign_id, CampaignArchRow.position)
    .join(ArtifactRow, ArtifactRow.key_digest == CampaignArchRow.artifact_digest)
    .where(_UNBUILDABLE)
)
_MEMBERSHIPS = select(CampaignDeviceRow.campaign_id, DeviceRow.name, CampaignDeviceRow.created).join(
    DeviceRow, DeviceRow.id == CampaignDeviceRow.device_id
)
_ADAPTIVE = select(
    AdaptiveDeviceRow.campaign_id, func.count(), func.sum(case((AdaptiveDeviceRow.state == "stopped", 1), else_=0))
).group_by(AdaptiveDeviceRow.campaign_id)
_CAMPAIGNS = select(CampaignRow.id, CampaignRow.format, CampaignRow.samples, CampaignRow.devices,
                    CampaignRow.cancelled_at.is_not(None), CampaignRow.paused_at.is_not(None),
                    CampaignRow.adaptive.is_not(None))  # fmt: skip


def _job_rows(now: datetime) -> Any:
    """Per campaign: its job rows, how many are done, failed and leased (the rest are pending: queued, or their
    lease lapsed), and when one last finished: one pass over the jobs in the order of an index, so no sort."""
    return select(
        JobRow.campaign_id, func.count(), _how_many(JobRow.state == "done"), _how_many(JobRow.state == "failed"),
        _how_many(_live(now)), func.max(JobRow.finished_at),
    ).group_by(JobRow.campaign_id)  # fmt: skip


def _oldest_lease(now: datetime) -> Any:
    """When the oldest live lease was granted. A query of its own: folded into ``_job_rows`` as a subquery, it
    made PostgreSQL estimate that query costly enough to compile it first (JIT), which took longer than the scan."""
    return select(func.min(LeaseRow.granted_at)).join(JobRow, JobRow.lease_id == LeaseRow.id).where(_live(now))


def _live(now: datetime) -> Any:
    return and_(JobRow.state == "leased", JobRow.lease_expires_at >= now)


def _how_many(condition: Any) -> Any:
    return func.sum(case((condition, 1), else_=0))


@dataclass
class _Fleet:
    jobs: Tally[tuple[str, str]]
    campaigns: Tally[str]
    last_finished: datetime | None = None
    oldest_lease: datetime | None = None


def _fleet(session: Session, now: datetime) -> _Fleet:
    """Jobs by (campaign state, job state), campaigns by state, and the job and lease times.

    A job whose model cannot be built is never leased, so it stays queued: failed here, as ``campaign status``
    counts it. A device's positions not created yet are pending (failed where their model cannot be built), and so
    are all of a named device that has not joined. A campaign is finished once it has a device, waits for no named
    one, and has no job pending or leased (an adaptive one: every device stopped), or once its format's reference
    model cannot be built.
    """
    fleet = _Fleet(
        Tally({(c, s): 0 for c in CAMPAIGN_STATES for s in JOB_STATES}), Tally(dict.fromkeys(CAMPAIGN_STATES, 0))
    )
    per_campaign: dict[str, Tally[str]] = {}
    for campaign_id, n, done, failed, leased, finished_at in session.execute(_job_rows(now)):
        per_campaign[campaign_id] = Tally(pending=n - done - failed - leased, leased=leased, done=done, failed=failed)
        fleet.last_finished = max(filter(None, (fleet.last_finished, finished_at)), default=None)
    fleet.oldest_lease = session.scalar(_oldest_lease(now))
    unbuilt: dict[str, list[int]] = {}
    for campaign_id, position in session.execute(_UNBUILT_POSITIONS):
        unbuilt.setdefault(campaign_id, []).append(position)
    joined: dict[str, list[tuple[str, int]]] = {}
    for campaign_id, name, created in session.execute(_MEMBERSHIPS):
        joined.setdefault(campaign_id, []).append((name, created))
    stepped = {campaign_id: (n, stopped) for campaign_id, n, stopped in session.execute(_ADAPTIVE)}
    rows = session.execute(_CAMPAIGNS).all()
    references = {REFERENCE_KEY.digest(fmt) for fmt in {row[1] for row in rows}}
    stuck = set(session.scalars(select(ArtifactRow.format).where(ArtifactRow.key_digest.in_(references), _UNBUILDABLE)))
    for campaign_id, fmt, samples, named, cancelled, paused, adaptive in rows:
        counts = per_campaign.get(campaign_id, Tally())
        members = joined.get(campaign_id, [])
        failing = unbuilt.get(campaign_id, [])
        for _, created in members:
            _unbuildable(counts, created, samples, failing)
        waiting = set(named or ()) - {name for name, _ in members}
        for _ in waiting:
            _unbuildable(counts, 0, samples, failing)
        finished = bool(members) and not waiting and counts["pending"] + counts["leased"] == 0
        if adaptive:
            n, stopped = stepped.get(campaign_id, (0, 0))
            finished = finished and n == len(members) and stopped == n
        state = (
            "cancelled" if cancelled else "finished" if finished or fmt in stuck else "paused" if paused else "active"
        )
        fleet.campaigns[state] += 1
        for job_state in JOB_STATES:
            fleet.jobs[(state, job_state)] += counts[job_state]
    return fleet


def _unbuildable(counts: Tally[str], created: int, samples: int, failing: list[int]) -> None:
    """Add a device's positions from ``created`` to ``samples``, not created yet, as pending, and move those of
    ``failing`` (models that cannot be built) to failed: below ``created`` their jobs exist, queued."""
    existing = sum(p < created for p in failing)
    uncreated = sum(created <= p < samples for p in failing)
    counts["pending"] += max(samples - created, 0) - uncreated - existing
    counts["failed"] += existing + uncreated


def _agent_states(now: datetime, lease_ttl_s: float) -> Any:
    live = (
        select(TokenRow.id)
        .where(TokenRow.agent_id == AgentRow.id, TokenRow.kind == "agent", TokenRow.revoked_at.is_(None))
        .exists()
    )
    online = AgentRow.last_seen >= online_after(now, lease_ttl_s)
    state = case((~live, "revoked"), (online, "online"), else_="offline").label("agent_state")
    return select(state, func.count()).select_from(AgentRow).group_by("agent_state")


@router.post(TOKENS_PATH, status_code=201)
def create_metrics_token(body: AdminTokenCreate, admin: AdminToken, c: Ctx) -> EnrollmentTokenCreated:
    """A token that reads ``/metrics`` and nothing else, for a Prometheus server's ``authorization``."""
    with c.store.write() as session:
        token = tokens.issue(session, "metrics", c.clock(), name=body.name, expires_at=body.expires_at)
    log.info("metrics token %s (%r) created by admin token %s", tokens.token_id(token), body.name, admin.id)
    return EnrollmentTokenCreated(token_id=tokens.token_id(token), name=body.name, token=token)


@router.get(TOKENS_PATH)
def list_metrics_tokens(_: AdminToken, c: Ctx) -> list[EnrollmentTokenInfo]:
    with c.store.read() as session:
        return [token_info(row) for row in tokens.list_kind(session, "metrics")]


@router.post(TOKENS_PATH + "/{token_id}/revoke")
def revoke_metrics_token(token_id: str, admin: AdminToken, c: Ctx) -> EnrollmentTokenInfo:
    with c.store.write() as session:
        revoked = token_info(tokens.revoke(session, "metrics", token_id, c.clock()))
    log.info("metrics token %s revoked by admin token %s", revoked.token_id, admin.id)
    return revoked


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_ENROLL_PATH = API_PREFIX + "/enroll"
_RESULTS_PATH = API_PREFIX + "/results"


class RequestMetrics:
    """Counts every HTTP request by route template, method and status class, times it, and counts the events an
    answer alone tells: enrollments, auth failures (401, 403) and refused result pushes. ``routes``: every route
    the app serves, to find the template of a request answered before routing.

    Scrapes are not counted: the counters tell the fleet's traffic alone, and a scrape (or its HEAD) reads what
    the one before it read, whatever the scraper's interval. A scraper refused sees it in its own ``up``."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == METRICS_PATH:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers if the app raises before it starts its answer

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "other"
            _count(self._route(scope), method, status, time.perf_counter() - started)

    def _route(self, scope: Scope) -> str:
        """The template of the route that served the request (``/v1/admin/campaigns/{campaign_id}``), found again
        for a request answered before routing (a 401 before a body, a 503 of the schema gate, a HEAD);
        ``unmatched`` for a path no route serves."""
        route = scope.get("route")
        if route is None:
            matches = [(r.matches(scope)[0], r) for r in self.routes]
            full = (r for m, r in matches if m == Match.FULL)
            route = next(full, next((r for m, r in matches if m == Match.PARTIAL), None))
        return getattr(route, "path", None) or "unmatched"


def _count(route: str, method: str, status: int, seconds: float) -> None:
    metrics.HTTP_REQUESTS.inc(1.0, route, method, f"{status // 100}xx")
    metrics.HTTP_DURATION.observe(seconds, route, method)
    if status in (401, 403):
        metrics.AUTH_FAILURES.inc(1.0, "unauthenticated" if status == 401 else "forbidden")
    if route == _ENROLL_PATH and status == 201:
        metrics.ENROLLMENTS.inc()
    if route == _RESULTS_PATH and 400 <= status < 500:
        metrics.RESULT_BATCHES_REJECTED.inc()
