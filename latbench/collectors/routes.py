"""The HTTP endpoints under ``/v1``: thin handlers that authenticate, open one transaction and call the store."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from latbench import __version__
from latbench.collectors import artifact_store, campaigns, enrollment, export, ingest, leasing, tokens
from latbench.collectors.context import Collector
from latbench.collectors.models import Agent, Token
from latbench.errors import Unauthenticated
from latbench.protocol import (
    API_PREFIX,
    CampaignCreate,
    CampaignCreated,
    CampaignStatus,
    DeviceInfo,
    EnrollmentTokenCreate,
    EnrollmentTokenCreated,
    EnrollRequest,
    EnrollResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    LeaseGrant,
    LeaseRelease,
    LeaseReleaseResponse,
    LeaseRequest,
    ResultBatch,
    ResultBatchResponse,
)

router = APIRouter(prefix=API_PREFIX)
_bearer = HTTPBearer(auto_error=False)


def _collector(request: Request) -> Collector:
    return request.app.state.collector


Ctx = Annotated[Collector, Depends(_collector)]


def _token(kind: tokens.Kind) -> Callable[..., Token]:
    """A dependency that admits requests carrying a live token of ``kind`` (401 or 403 otherwise)."""

    def dependency(c: Ctx, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Token:
        with c.store.read() as session:
            return tokens.authenticate(session, credentials.credentials if credentials else None, kind)

    return dependency


AGENT_TOKEN_STATE = "latbench_agent_token"
"""Where ``_agent_token`` leaves the presented agent token, for a request refused before its handler ran."""


def _agent_token(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str:
    """The presented agent token, checked later inside the handler's own transaction (one session per request).

    A missing token is refused here, as before; a request whose body is then refused has its token checked by
    the app's validation handler first, so a bad token still answers 401 or 403 ahead of a bad body.
    """
    if credentials is None or not credentials.credentials:
        raise Unauthenticated(tokens.MISSING)
    setattr(request.state, AGENT_TOKEN_STATE, credentials.credentials)
    return credentials.credentials


def check_pending_agent_token(request: Request, collector: Collector) -> None:
    """Raise as the agent endpoints' authentication would, for a request whose handler never ran."""
    token = getattr(request.state, AGENT_TOKEN_STATE, None)
    if token is not None:
        with collector.store.read() as session:
            tokens.authenticate(session, token, "agent")


def _agent(session: Session, token: str) -> Agent:
    """The agent behind a live agent token, found in the request's own transaction (401 or 403 otherwise)."""
    return tokens.authenticate_agent(session, token)


AdminToken = Annotated[Token, Depends(_token("admin"))]
EnrollToken = Annotated[Token, Depends(_token("enroll"))]
AgentToken = Annotated[Token, Depends(_token("agent"))]
AgentCredentials = Annotated[str, Depends(_agent_token)]


@router.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.post("/enroll", status_code=201)
def enroll(body: EnrollRequest, _: EnrollToken, c: Ctx) -> EnrollResponse:
    with c.store.write() as session:
        return enrollment.enroll(session, body, c.clock(), c.lease_ttl_s)


@router.post("/heartbeat")
def heartbeat(body: HeartbeatRequest, token: AgentCredentials, c: Ctx) -> HeartbeatResponse:
    with c.store.write() as session:
        agent = _agent(session, token)
        renewed, lost, expires = leasing.renew(session, agent, body.lease_ids, c.clock(), c.lease_ttl_s)
    return HeartbeatResponse(renewed=renewed, lost=lost, expires_at=expires)


@router.post("/leases")
def lease(body: LeaseRequest, token: AgentCredentials, c: Ctx) -> LeaseGrant:
    with c.store.write() as session:
        agent = _agent(session, token)
        jobs = leasing.grant(session, agent, body, c.clock(), c.lease_ttl_s)
    return LeaseGrant(jobs=jobs, retry_after_s=c.retry_after_s)


@router.post("/leases/release")
def release(body: LeaseRelease, token: AgentCredentials, c: Ctx) -> LeaseReleaseResponse:
    with c.store.write() as session:
        agent = _agent(session, token)
        released, ignored = leasing.release(session, agent, body.lease_ids, c.clock())
    return LeaseReleaseResponse(released=released, ignored=ignored)


@router.post("/results")
def results(body: ResultBatch, token: AgentCredentials, c: Ctx) -> ResultBatchResponse:
    with c.store.write() as session:
        agent = _agent(session, token)
        acks = ingest.ingest(session, agent, body, c.clock())
    return ResultBatchResponse(acks=acks)


@router.get("/artifacts/{sha256}", response_class=FileResponse)
def artifact(sha256: Annotated[str, PathParam(pattern=r"^[0-9a-f]{64}$")], _: AgentToken, c: Ctx) -> FileResponse:
    with c.store.read() as session:
        path = artifact_store.artifact_path(session, sha256, c.artifacts_dir)
    return FileResponse(path, media_type="application/octet-stream")


@router.post("/admin/enrollment-tokens", status_code=201)
def create_enrollment_token(body: EnrollmentTokenCreate, _: AdminToken, c: Ctx) -> EnrollmentTokenCreated:
    with c.store.write() as session:
        token = tokens.issue(session, "enroll", c.clock(), name=body.name)
    return EnrollmentTokenCreated(token_id=tokens.token_id(token), name=body.name, token=token)


@router.post("/admin/campaigns", status_code=201)
def create_campaign(body: CampaignCreate, _: AdminToken, c: Ctx) -> CampaignCreated:
    with c.store.write() as session:
        campaign = campaigns.create(session, body, c.clock())
    c.wake_builder()
    return CampaignCreated(campaign_id=campaign.id)


@router.get("/admin/campaigns")
def list_campaigns(_: AdminToken, c: Ctx) -> list[CampaignStatus]:
    with c.store.read() as session:
        return campaigns.statuses(session, c.clock())


@router.get("/admin/campaigns/{campaign_id}")
def campaign_status(campaign_id: str, _: AdminToken, c: Ctx) -> CampaignStatus:
    with c.store.read() as session:
        return campaigns.status(session, campaigns.get(session, campaign_id), c.clock())


@router.get("/admin/devices")
def devices(_: AdminToken, c: Ctx) -> list[DeviceInfo]:
    with c.store.read() as session:
        return enrollment.devices(session, c.clock(), c.lease_ttl_s)


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
