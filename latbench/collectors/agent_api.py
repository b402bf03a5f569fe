"""The agents' hot endpoints (heartbeat, leases, release, results), kept lean for many agents at once.

Each one reads its body once with pydantic's JSON parser (no ``json.loads`` then validation), does all its
store work in one worker thread (one hand-off per request, not one per dependency; at most ``AGENT_THREADS``
at once), and answers with JSON serialised once from its response model, which FastAPI then sends as it is
instead of validating it again. The answers and errors are the same as the other routes' bodies get: a body sent
as another media type than JSON is a 415, one that is not JSON a 400, one that does not fit the model a 422 naming
the field, and a bad token still comes first (401 or 403).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from anyio import CapacityLimiter, to_thread
from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema
from sqlalchemy.orm import Session

from latbench.collectors import ingest, leasing, tokens
from latbench.collectors.context import Collector
from latbench.collectors.http_semantics import json_body
from latbench.collectors.tokens import AgentRef
from latbench.errors import Unauthenticated
from latbench.protocol import (
    API_PREFIX,
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
M = TypeVar("M", bound=BaseModel)

AGENT_TOKEN_STATE = "latbench_agent_token"
"""Where ``_agent_token`` leaves the presented agent token, for a request refused before its handler ran."""
REQUEST_MODELS: list[type[BaseModel]] = [HeartbeatRequest, LeaseRequest, LeaseRelease, ResultBatch]
"""The bodies these endpoints read themselves; ``request_schemas`` puts them into the OpenAPI document."""


async def _agent_token(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str:
    """The presented agent token, checked later inside the handler's own transaction (one session per request).

    A missing token is refused here; a request whose body is then refused has its token checked by the app's
    validation handler first, so a bad token still answers 401 or 403 ahead of a bad body.
    """
    if credentials is None or not credentials.credentials:
        raise Unauthenticated(tokens.MISSING)
    setattr(request.state, AGENT_TOKEN_STATE, credentials.credentials)
    return credentials.credentials


AgentCredentials = Annotated[str, Depends(_agent_token)]


def check_pending_agent_token(request: Request, collector: Collector) -> None:
    """Raise as the agent endpoints' authentication would, for a request whose handler never ran."""
    token = getattr(request.state, AGENT_TOKEN_STATE, None)
    if token is not None:
        with collector.store.read() as session:
            tokens.authenticate(session, token, "agent", collector.clock())


INLINE_PARSE_BYTES = 256 * 2**10
"""Bodies up to this size are read on the event loop; a larger one (a push of long ``times_ms``, up to
``MAX_BODY_BYTES``) is read in a worker thread: reading 30 MiB takes about 2 s, which would stall every other
request, heartbeats included, for as long (in a thread: 0.15 s at most)."""


async def _body(request: Request, model: type[M]) -> M:
    """The request body as ``model``; a ``RequestValidationError`` shaped like FastAPI's own if it is not one."""
    raw = await json_body(request)
    try:
        if len(raw) <= INLINE_PARSE_BYTES:
            return model.model_validate_json(raw)
        return await to_thread.run_sync(model.model_validate_json, raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def request_schemas() -> dict[str, Any]:
    """OpenAPI component schemas of ``REQUEST_MODELS`` (and the models they use)."""
    _, schemas = models_json_schema(
        [(model, "validation") for model in REQUEST_MODELS], ref_template="#/components/schemas/{model}"
    )
    return schemas.get("$defs", {})


async def _answer(request: Request, work: Callable[[Collector], BaseModel]) -> Response:
    """Run ``work`` in a worker thread and send its answer, serialised once."""
    collector: Collector = request.app.state.collector

    def run() -> bytes:
        return work(collector).model_dump_json().encode()

    return Response(await to_thread.run_sync(run, limiter=_limiter()), media_type="application/json")


AGENT_THREADS = 8
"""Worker threads for the agents' store work, per collector process. A few keep the database busy on a small
machine; dozens (the thread pool's default of 40) only take turns on the one interpreter lock and stretch every
request's time under load. More cores are served by more processes (``--workers``)."""
_LIMITERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, CapacityLimiter] = weakref.WeakKeyDictionary()


def _limiter() -> CapacityLimiter:
    """The running event loop's limiter (a limiter belongs to the loop it was made in)."""
    loop = asyncio.get_running_loop()
    if loop not in _LIMITERS:
        _LIMITERS[loop] = CapacityLimiter(AGENT_THREADS)
    return _LIMITERS[loop]


async def _agent_work(
    request: Request, token: str, model: type[M], act: Callable[[Collector, Session, AgentRef, M, datetime], BaseModel]
) -> Response:
    """Read the body as ``model``, then in one write transaction authenticate the agent and ``act``."""
    body = await _body(request, model)

    def work(c: Collector) -> BaseModel:
        now = c.clock()
        with c.store.write() as session:
            return act(c, session, tokens.authenticate_agent(session, token, now), body, now)

    return await _answer(request, work)


@router.post("/heartbeat", response_model=HeartbeatResponse, openapi_extra=_body_schema(HeartbeatRequest))
async def heartbeat(request: Request, token: AgentCredentials) -> Response:
    def act(c: Collector, session: Session, agent: AgentRef, body: HeartbeatRequest, now: datetime) -> BaseModel:
        renewed, lost, expires = leasing.renew(session, agent, body.lease_ids, now, c.lease_ttl_s)
        return HeartbeatResponse(renewed=renewed, lost=lost, expires_at=expires)

    return await _agent_work(request, token, HeartbeatRequest, act)


@router.post("/leases", response_model=LeaseGrant, openapi_extra=_body_schema(LeaseRequest))
async def lease(request: Request, token: AgentCredentials) -> Response:
    def act(c: Collector, session: Session, agent: AgentRef, body: LeaseRequest, now: datetime) -> BaseModel:
        return LeaseGrant(jobs=leasing.grant(session, agent, body, now, c.lease_ttl_s), retry_after_s=c.retry_after_s)

    return await _agent_work(request, token, LeaseRequest, act)


@router.post("/leases/release", response_model=LeaseReleaseResponse, openapi_extra=_body_schema(LeaseRelease))
async def release(request: Request, token: AgentCredentials) -> Response:
    def act(c: Collector, session: Session, agent: AgentRef, body: LeaseRelease, now: datetime) -> BaseModel:
        released, ignored = leasing.release(session, agent, body.lease_ids, now)
        return LeaseReleaseResponse(released=released, ignored=ignored)

    return await _agent_work(request, token, LeaseRelease, act)


@router.post("/results", response_model=ResultBatchResponse, openapi_extra=_body_schema(ResultBatch))
async def results(request: Request, token: AgentCredentials) -> Response:
    def act(c: Collector, session: Session, agent: AgentRef, body: ResultBatch, now: datetime) -> BaseModel:
        return ResultBatchResponse(acks=ingest.ingest(session, agent, body, now))

    return await _agent_work(request, token, ResultBatch, act)
