"""The HTTP endpoints under ``/v1``: thin handlers that authenticate, open one transaction and call the store.

The agents' hot endpoints (heartbeat, leases, results) live in ``agent_api``, written for throughput.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from latbench import __version__
from latbench.collectors import artifact_store, campaigns, enrollment, export, tokens, uploads
from latbench.collectors.context import Collector
from latbench.collectors.http_semantics import JsonBodyRoute
from latbench.collectors.migrations import head
from latbench.collectors.models import TokenRow
from latbench.collectors.schema import SchemaMismatch, SchemaWatch
from latbench.protocol import (
    API_PREFIX,
    AdminTokenCreate,
    AgentRevoked,
    CampaignCreate,
    CampaignCreated,
    CampaignStatus,
    DeviceInfo,
    EnrollmentTokenCreate,
    EnrollmentTokenCreated,
    EnrollmentTokenInfo,
    EnrollRequest,
    EnrollResponse,
    ModelInfo,
    PriorityChange,
)

router = APIRouter(prefix=API_PREFIX, route_class=JsonBodyRoute)
UPLOAD_PATH = "/admin/models"
HEALTH_PATH = API_PREFIX + "/health"
READY_PATH = API_PREFIX + "/ready"
_bearer = HTTPBearer(auto_error=False)
log = logging.getLogger(__name__)
"""One INFO line per enrollment and admin action, naming the acting token's id (never the token): the audit trail."""


async def _collector(request: Request) -> Collector:
    return request.app.state.collector


Ctx = Annotated[Collector, Depends(_collector)]
Sha256Path = Annotated[str, PathParam(pattern=r"^[0-9a-f]{64}$")]


def _token(kind: tokens.Kind | tuple[tokens.Kind, ...]) -> Callable[..., TokenRow]:
    """A dependency that admits requests carrying a live token of ``kind`` (401 or 403 otherwise)."""

    def dependency(c: Ctx, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> TokenRow:
        with c.store.read() as session:
            return tokens.authenticate(session, credentials.credentials if credentials else None, kind, c.clock())

    return dependency


AdminToken = Annotated[TokenRow, Depends(_token("admin"))]
EnrollToken = Annotated[TokenRow, Depends(_token(("enroll", "agent", "admin")))]
"""New names take an enrollment token; an existing name its own agent token or an admin token."""
AgentToken = Annotated[TokenRow, Depends(_token("agent"))]


@router.get("/health")
def health(request: Request) -> dict[str, str | None]:
    """Liveness: the process answers (never touches the store). ``schema`` is the store schema this release
    serves, ``store_schema`` the one last found in the store; they differ on a replica that stopped serving."""
    watch: SchemaWatch = request.app.state.schema
    return {"status": "ok", "version": __version__, "schema": head(), "store_schema": watch.found}


@router.get("/ready")
def ready(request: Request) -> dict[str, str | None]:
    """Readiness: reads the store's schema revision now; 503 ``store_unavailable`` while the store cannot be
    reached, 503 ``schema_mismatch`` while it is at a schema this process does not serve."""
    watch: SchemaWatch = request.app.state.schema
    found = watch.check()
    if not watch.serving:
        raise SchemaMismatch(watch.refusal())
    return {"status": "ready", "version": __version__, "schema": found}


@router.post("/enroll", status_code=201)
def enroll(body: EnrollRequest, caller: EnrollToken, c: Ctx) -> EnrollResponse:
    with c.store.write() as session:
        enrolled = enrollment.enroll(session, body, caller, c.clock(), c.lease_ttl_s)
    log.info("agent %r (%s) enrolled on device %r (%s) with %s token %s", body.name, enrolled.agent_id,
             enrolled.device_name, enrolled.device_id, caller.kind, caller.id)  # fmt: skip
    return enrolled


@router.get("/artifacts/{sha256}", response_class=FileResponse)
def artifact(sha256: Sha256Path, _: AgentToken, c: Ctx) -> FileResponse:
    path = artifact_store.serve(c.store, sha256, c.artifacts_dir, c.clock(), c.artifact_cache_bytes)
    return FileResponse(path, media_type="application/octet-stream")


@router.post("/admin/enrollment-tokens", status_code=201)
def create_enrollment_token(body: EnrollmentTokenCreate, admin: AdminToken, c: Ctx) -> EnrollmentTokenCreated:
    with c.store.write() as session:
        token = tokens.issue(session, "enroll", c.clock(), name=body.name, expires_at=body.expires_at,
                             max_uses=body.max_uses, agent_names=body.agent_names)  # fmt: skip
    log.info("enrollment token %s (%r) created by admin token %s", tokens.token_id(token), body.name, admin.id)
    return EnrollmentTokenCreated(token_id=tokens.token_id(token), name=body.name, token=token)


@router.get("/admin/enrollment-tokens")
def list_enrollment_tokens(_: AdminToken, c: Ctx) -> list[EnrollmentTokenInfo]:
    with c.store.read() as session:
        return [token_info(row) for row in tokens.list_kind(session, "enroll")]


@router.post("/admin/enrollment-tokens/{token_id}/revoke")
def revoke_enrollment_token(token_id: str, admin: AdminToken, c: Ctx) -> EnrollmentTokenInfo:
    """Stop new enrollments with the token; agents enrolled with it keep working. Revoking twice is a no-op."""
    with c.store.write() as session:
        revoked = token_info(tokens.revoke(session, "enroll", token_id, c.clock()))
    log.info("enrollment token %s revoked by admin token %s", revoked.token_id, admin.id)
    return revoked


@router.post("/admin/admin-tokens", status_code=201)
def create_admin_token(body: AdminTokenCreate, admin: AdminToken, c: Ctx) -> EnrollmentTokenCreated:
    with c.store.write() as session:
        token = tokens.issue(session, "admin", c.clock(), name=body.name, expires_at=body.expires_at)
    log.info("admin token %s (%r) created by admin token %s", tokens.token_id(token), body.name, admin.id)
    return EnrollmentTokenCreated(token_id=tokens.token_id(token), name=body.name, token=token)


@router.get("/admin/admin-tokens")
def list_admin_tokens(_: AdminToken, c: Ctx) -> list[EnrollmentTokenInfo]:
    with c.store.read() as session:
        return [token_info(row) for row in tokens.list_kind(session, "admin")]


@router.post("/admin/admin-tokens/{token_id}/revoke")
def revoke_admin_token(token_id: str, admin: AdminToken, c: Ctx) -> EnrollmentTokenInfo:
    """Revoke an admin token (not the last live one); revoking twice is a no-op."""
    with c.store.write() as session:
        revoked = token_info(tokens.revoke(session, "admin", token_id, c.clock()))
    log.info("admin token %s revoked by admin token %s", revoked.token_id, admin.id)
    return revoked


def token_info(row: TokenRow) -> EnrollmentTokenInfo:
    return EnrollmentTokenInfo(token_id=row.id, name=row.name, created_at=row.created_at, revoked_at=row.revoked_at,
                               expires_at=row.expires_at, max_uses=row.max_uses, uses=row.uses,
                               agent_names=row.agent_names)  # fmt: skip


@router.put(UPLOAD_PATH + "/{sha256}", status_code=201)
async def upload_model(sha256: Sha256Path, request: Request, response: Response, _: AdminToken, c: Ctx) -> ModelInfo:
    """Store a model file (the raw bytes) under its content hash for campaigns; 200 if it was held already."""
    partial = await uploads.receive(request.stream(), sha256, c.artifacts_dir)

    def store() -> tuple[ModelInfo, bool]:
        model = uploads.inspect(partial, sha256)
        with c.store.write() as session:
            return uploads.keep(session, partial, model, c.artifacts_dir, c.clock())

    try:
        found, new = await to_thread.run_sync(store)
    finally:
        partial.unlink(missing_ok=True)
    if not new:
        response.status_code = 200
    return found


@router.get(UPLOAD_PATH + "/{sha256}")
def model(sha256: Sha256Path, _: AdminToken, c: Ctx) -> ModelInfo:
    """The uploaded model; a 404 tells the largest file an upload may be (``detail.max_bytes``)."""
    with c.store.read() as session:
        return uploads.get(session, sha256, c.max_model_bytes)


@router.post("/admin/campaigns", status_code=201)
def create_campaign(body: CampaignCreate, admin: AdminToken, c: Ctx) -> CampaignCreated:
    with c.store.write() as session:
        campaign = campaigns.create(session, body, c.clock())
    log.info("campaign %s (%r) created by admin token %s", campaign.id, campaign.name, admin.id)
    c.wake_builder()
    return CampaignCreated(campaign_id=campaign.id)


@router.get("/admin/campaigns")
def list_campaigns(_: AdminToken, c: Ctx) -> list[CampaignStatus]:
    with c.store.read() as session:
        return campaigns.statuses(session, c.clock(), c.lease_ttl_s)


def _status(c: Collector, campaign_id: str) -> CampaignStatus:
    """The campaign's status as read now: what every campaign action answers with."""
    with c.store.read() as session:
        return campaigns.status(session, campaigns.get(session, campaign_id), c.clock(), c.lease_ttl_s)


@router.get("/admin/campaigns/{campaign_id}")
def campaign_status(campaign_id: str, _: AdminToken, c: Ctx) -> CampaignStatus:
    return _status(c, campaign_id)


@router.post("/admin/campaigns/{campaign_id}/cancel")
def cancel_campaign(campaign_id: str, admin: AdminToken, c: Ctx) -> CampaignStatus:
    """No more of the campaign's jobs are leased; leased ones may finish and their results are kept. Cancelling
    twice is a no-op."""
    with c.store.write() as session:
        campaigns.cancel(session, campaign_id, c.clock())
    log.info("campaign %s cancelled by admin token %s", campaign_id, admin.id)
    return _status(c, campaign_id)


@router.post("/admin/campaigns/{campaign_id}/pause")
def pause_campaign(campaign_id: str, admin: AdminToken, c: Ctx) -> CampaignStatus:
    """No more of the campaign's jobs are leased until it is resumed; leased ones run out as usual. Pausing twice
    is a no-op; a campaign with no work left (cancelled, done or failed) is a 409."""
    with c.store.write() as session:
        campaigns.pause(session, campaign_id, c.clock(), c.lease_ttl_s)
    log.info("campaign %s paused by admin token %s", campaign_id, admin.id)
    return _status(c, campaign_id)


@router.post("/admin/campaigns/{campaign_id}/resume")
def resume_campaign(campaign_id: str, admin: AdminToken, c: Ctx) -> CampaignStatus:
    """Lease the paused campaign's jobs again; a no-op if it is not paused, a 409 if it is cancelled."""
    with c.store.write() as session:
        campaigns.resume(session, campaign_id)
    log.info("campaign %s resumed by admin token %s", campaign_id, admin.id)
    return _status(c, campaign_id)


@router.post("/admin/campaigns/{campaign_id}/priority")
def campaign_priority(campaign_id: str, body: PriorityChange, admin: AdminToken, c: Ctx) -> CampaignStatus:
    """Set the campaign's priority (higher is leased first), from the next lease request on."""
    with c.store.write() as session:
        campaigns.set_priority(session, campaign_id, body.priority)
    log.info("campaign %s given priority %d by admin token %s", campaign_id, body.priority, admin.id)
    return _status(c, campaign_id)


@router.post("/admin/agents/{name}/revoke")
def revoke_agent(name: str, admin: AdminToken, c: Ctx) -> AgentRevoked:
    """Revoke the agent's tokens and put its jobs back in the queue; revoking twice is a no-op."""
    with c.store.write() as session:
        revoked = enrollment.revoke(session, name, c.clock())
    log.info("agent %r (%s) revoked by admin token %s; %d leased job(s) back in the queue", revoked.name,
             revoked.agent_id, admin.id, revoked.released)  # fmt: skip
    return revoked


@router.get("/admin/devices")
def devices(_: AdminToken, c: Ctx, retired: Annotated[bool, Query(alias="all")] = False) -> list[DeviceInfo]:
    """The live devices; ``?all=true`` lists the retired ones too (``latbench devices --all``)."""
    with c.store.read() as session:
        return enrollment.devices(session, c.clock(), c.lease_ttl_s, retired)


@router.get("/admin/campaigns/{campaign_id}/results", response_class=StreamingResponse)
def campaign_results(campaign_id: str, _: AdminToken, c: Ctx) -> StreamingResponse:
    """NDJSON: one row per line with ``latbench measure``'s columns plus ``device`` and ``agent``."""
    with c.store.read() as session:
        campaigns.get(session, campaign_id)

    def lines() -> Iterator[bytes]:
        with c.store.read() as session:
            for row in export.rows(session, campaigns.get(session, campaign_id)):
                yield json.dumps(row, allow_nan=False).encode() + b"\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@router.get("/admin/results/{result_id}")
def stored_result(result_id: str, _: AdminToken, c: Ctx) -> dict[str, Any]:
    """One stored measurement as an export row (its profile inline), for ``latbench results show``."""
    with c.store.read() as session:
        return export.result(session, result_id)
