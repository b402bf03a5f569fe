"""The collector's FastAPI application: routes, the body-size limit, and one JSON error shape for every failure.

Every error answers with ``ErrorBody`` (``code``, ``message``, ``detail``). Bad input is refused before the
store is touched: request models reject it (422, 400 for a body that is not JSON, 415 for one sent as another
media type: ``http_semantics``), the store's own checks raise a ``RequestRejected`` inside a transaction that
then rolls back, and a body over ``MAX_BODY_BYTES`` gets a 413 whether its size is declared or only found while
it streams in. While the store cannot be reached (a database restart) requests answer 503 with ``Retry-After``
and leave one log line each. HEAD is answered wherever GET is, as the GET without its body.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from latbench import __version__
from latbench.collectors import agent_api, dashboard, fleet_api, metrics_api
from latbench.collectors.agent_api import check_pending_agent_token
from latbench.collectors.context import Collector
from latbench.collectors.db import outage_reason
from latbench.collectors.http_semantics import HeadAsGet, with_head
from latbench.collectors.limits import BODY_TIMEOUT_S, TokenFirst
from latbench.collectors.routes import HEALTH_PATH, READY_PATH, UPLOAD_PATH, router
from latbench.collectors.schema import SCHEMA_CHECK_S, SchemaGate, SchemaWatch
from latbench.errors import RequestRejected
from latbench.protocol import API_PREFIX, MAX_BODY_BYTES, ErrorBody

SHOWN_PROBLEMS = 5
OUTAGE_RETRY_AFTER_S = 2
"""The ``Retry-After`` of a 503 answered while the store cannot be reached."""
log = logging.getLogger(__name__)
_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}


def _error(
    status: int, code: str, message: str, detail: Any = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(ErrorBody(code=code, message=message, detail=detail).model_dump(mode="json"), status, headers)


LOC_CHARS = 80
"""The most of one field name an error repeats: a client's 200,000-character key comes back as its start."""


def _short(part: int | str) -> int | str:
    return part if isinstance(part, int) or len(part) <= LOC_CHARS else part[:LOC_CHARS] + "..."


def _where(loc: tuple[int | str, ...]) -> str:
    """``results.0.stats.median_ms`` for a body field, ``path.sha256`` for a path parameter."""
    parts = loc[1:] if loc[:1] == ("body",) else loc
    return ".".join(str(_short(p)) for p in parts) or "body"


async def _rejected(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestRejected)
    return _error(exc.status, exc.code, str(exc), exc.detail)


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    """Pydantic's errors as one readable line (field path: problem) plus a short structured list.

    An agent endpoint checks its token inside its handler's transaction; a request refused before the handler
    ran has it checked here, so a bad token answers 401 or 403 ahead of a bad body, as an endpoint that checks
    its token first would.
    """
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    broken = next((e for e in errors if e["type"] == "json_invalid"), None)
    if broken is not None:
        reason = broken.get("ctx", {}).get("error", "invalid JSON")
        at = broken["loc"][-1]
        where = f" at character {at}" if isinstance(at, int) else ""
        return _error(400, "malformed_json", f"the body is not valid JSON: {reason}{where}")
    try:
        await run_in_threadpool(check_pending_agent_token, request, request.app.state.collector)
    except RequestRejected as rejected:
        return await _rejected(request, rejected)
    problems = [f"{_where(tuple(e['loc']))}: {e['msg']}" for e in errors]
    more = f" (and {len(problems) - SHOWN_PROBLEMS} more)" if len(problems) > SHOWN_PROBLEMS else ""
    detail = [{"loc": [_short(p) for p in e["loc"]], "msg": e["msg"], "type": e["type"]} for e in errors[:50]]
    return _error(422, "invalid", "; ".join(problems[:SHOWN_PROBLEMS]) + more, detail)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:  # the router's Allow names only the first route of the path
        headers["Allow"] = ", ".join(_allowed(request))
    return _error(exc.status_code, code, str(exc.detail), headers=headers)


ROUTERS = (router, agent_api.router, dashboard.router, fleet_api.router, metrics_api.router)
"""Every route the app serves: included at start, and read again to answer a 405's ``Allow``."""
ROUTES = tuple(route for r in ROUTERS for route in r.routes)


def _allowed(request: Request) -> list[str]:
    """Every method some route of ``ROUTERS`` serves at the request's path, HEAD with GET."""
    matching = [route for route in ROUTES if route.matches(request.scope)[0] != Match.NONE]
    return with_head(method for route in matching for method in getattr(route, "methods", None) or ())


async def _gone(request: Request, exc: Exception) -> JSONResponse:
    """The client went away before its body ended (an agent killed while pushing, say): nothing of the body was
    used, so nothing was stored; one log line, where the catch-all would log a traceback as for a bug."""
    log.info("%s %s: the client disconnected before its body ended", request.method, request.url.path)
    return _error(400, "client_disconnected", "the client disconnected before its body ended")


async def _unstorable(_: Request, exc: Exception) -> JSONResponse:
    """A value the database's types cannot hold (a NUL character in PostgreSQL text, say): the client's doing."""
    reason = str(getattr(exc, "orig", exc)).splitlines()[0]
    return _error(422, "invalid", f"the store cannot hold a value in this request: {reason}")


async def _outage(request: Request, exc: Exception) -> JSONResponse:
    """The store cannot be reached (a database restart, say): one log line, and a 503 that tells clients when
    to try again, where a traceback per request would flood the log for as long as the outage lasts."""
    log.warning("%s %s: the store is unreachable: %s", request.method, request.url.path, outage_reason(exc))
    response = _error(503, "store_unavailable", "the collector's store is unreachable; try again shortly")
    response.headers["Retry-After"] = str(OUTAGE_RETRY_AFTER_S)
    return response


async def _internal(_: Request, exc: Exception) -> JSONResponse:
    """The answer to a bug; the server logs the traceback."""
    return _error(500, "internal", "internal error; the collector's log has the details")


class _TooLarge(RequestRejected):
    """A request body over its limit; the detail tells the limit (``max_bytes``), so a client can say which file
    was too large for what."""

    status = 413
    code = "too_large"


class BodyLimit:
    """Refuses request bodies over ``limit`` bytes with a 413 (``detail.max_bytes`` the limit): at once by their
    Content-Length, else once the bytes streamed in pass the limit (a chunked body has no declared length). Paths
    under ``upload_prefix`` (model files, streamed to disk) have ``upload_limit`` instead.
    """

    def __init__(self, app: ASGIApp, limit: int, upload_prefix: str = "", upload_limit: int = 0) -> None:
        self.app = app
        self.limit = limit
        self.upload_prefix = upload_prefix
        self.upload_limit = upload_limit

    @staticmethod
    def _too_large(limit: int) -> _TooLarge:
        return _TooLarge(f"the request body is over the limit of {limit} bytes", {"max_bytes": limit})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = bool(self.upload_prefix) and scope["path"].startswith(self.upload_prefix)
        limit = self.upload_limit if upload else self.limit
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            exc = self._too_large(limit)
            await _error(exc.status, exc.code, str(exc), exc.detail)(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise self._too_large(limit)
            return message

        await self.app(scope, limited, send)


def _document_request_bodies(app: FastAPI) -> None:
    """Add the schemas of the bodies ``agent_api`` parses itself to the OpenAPI document FastAPI generates."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            document.setdefault("components", {}).setdefault("schemas", {}).update(agent_api.request_schemas())
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(
    collector: Collector,
    body_timeout_s: float = BODY_TIMEOUT_S,
    schema_check_s: float = SCHEMA_CHECK_S,
    metrics_public: bool = False,
) -> FastAPI:
    """The ASGI app serving ``collector``'s store; OpenAPI at ``/openapi.json``. Writes need a live token before
    their bodies are read, and bodies must arrive in time (``latbench.collectors.limits``); every request but
    ``/v1/health`` and ``/v1/ready`` answers 503 once the store is found at another schema, checked every
    ``schema_check_s`` (``latbench.collectors.schema``). ``/metrics`` needs a metrics or admin token unless
    ``metrics_public`` (``latbench.collectors.metrics_api``)."""
    # no trailing-slash redirects: they echo the request's Host header into Location; every path is exact
    # no /docs or /redoc: FastAPI's pages load their scripts from a CDN, which an admin's token would then meet
    app = FastAPI(
        title="latbench collector", version=__version__, redirect_slashes=False, docs_url=None, redoc_url=None
    )
    app.state.collector = collector
    app.state.schema = SchemaWatch(collector.store.engine, interval_s=schema_check_s)
    app.state.metrics_public = metrics_public
    for included in ROUTERS:
        app.include_router(included)
    _document_request_bodies(app)
    app.add_middleware(
        BodyLimit, limit=MAX_BODY_BYTES, upload_prefix=API_PREFIX + UPLOAD_PATH, upload_limit=collector.max_model_bytes
    )
    agent_writes = frozenset(getattr(route, "path", "") for route in agent_api.router.routes)
    app.add_middleware(TokenFirst, collector=collector, body_timeout_s=body_timeout_s, agent_writes=agent_writes)
    app.add_middleware(HeadAsGet)
    app.add_middleware(SchemaGate, watch=app.state.schema, exempt=frozenset({HEALTH_PATH, READY_PATH}))
    app.add_middleware(metrics_api.RequestMetrics, routes=ROUTES)  # outermost: it counts every other's answers
    app.add_exception_handler(RequestRejected, _rejected)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(ClientDisconnect, _gone)
    app.add_exception_handler(sa.exc.DataError, _unstorable)
    app.add_exception_handler(sa.exc.OperationalError, _outage)
    app.add_exception_handler(sa.exc.InterfaceError, _outage)
    app.add_exception_handler(Exception, _internal)
    return app
