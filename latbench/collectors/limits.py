"""What a client must do before the collector spends anything on it: send its headers whole and soon, present a
live token before a write's body is read, and send that body in time.

The HTTP protocol (``limited_http``, uvicorn's httptools protocol with limits) refuses request headers over
``MAX_HEADER_BYTES`` with a 431 and closes a connection whose headers are not complete ``HEADER_TIMEOUT_S`` after
it opened or its request began; uvicorn closes idle keep-alive connections after ``KEEP_ALIVE_S``. ``TokenFirst``
answers a write under ``/v1`` that carries no live token of the kind its path needs with a 401 or 403 before
reading a byte of its body, and a 408 to a body not received within ``BODY_TIMEOUT_S`` (longer for a long one).
The endpoints still check their tokens themselves, inside their transactions: this keeps strangers from costing
anything.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import sqlalchemy as sa
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from latbench.collectors import tokens
from latbench.collectors.context import Collector
from latbench.errors import RequestRejected, Unauthenticated
from latbench.protocol import API_PREFIX

MAX_HEADER_BYTES = 64 * 2**10
"""Request line and headers together: a bearer token and a few headers are under 1 KiB."""
HEADER_TIMEOUT_S = 10.0
KEEP_ALIVE_S = 5
BODY_TIMEOUT_S = 120.0
MIN_BODY_BYTES_PER_S = 256 * 2**10
"""A body must arrive within ``BODY_TIMEOUT_S`` plus its declared length at this rate (a 512 MiB model file: 34
more minutes)."""
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
KNOWN_FOR_S = 10.0
"""How long a token that passed stays known to ``TokenFirst`` without another look at the store; a revoked one is
still refused by the endpoint itself."""
KNOWN_TOKENS_MAX = 10_000


def limited_http(max_header_bytes: int = MAX_HEADER_BYTES, header_timeout_s: float = HEADER_TIMEOUT_S) -> type:
    """uvicorn's httptools protocol, refusing headers over ``max_header_bytes`` (431) and closing connections
    whose headers are not complete ``header_timeout_s`` after the connection opened or the request began."""

    class LimitedHttpTools(HttpToolsProtocol):
        _parsed_bytes = _read_bytes = 0
        _in_headers = True
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._start_headers()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_header_timer()
            super().connection_lost(exc)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if not self._in_headers:
                self._start_headers()

        def on_headers_complete(self) -> None:
            self._in_headers = False
            self._stop_header_timer()
            super().on_headers_complete()

        def on_url(self, url: bytes) -> None:
            self._count(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._count(len(name) + len(value))
            super().on_header(name, value)

        def _count(self, size: int) -> None:
            """Headers parsed: over the limit, the parser stops (uvicorn's 400, made a 431 below)."""
            self._parsed_bytes += size
            if self._parsed_bytes > max_header_bytes:
                raise ValueError("headers too large")

        def data_received(self, data: bytes) -> None:
            """A read that leaves the headers incomplete counts whole, so that a huge header is refused as it
            streams in rather than once the parser has buffered all of it."""
            super().data_received(data)
            if self._in_headers and not self.transport.is_closing():
                self._read_bytes += len(data)
                if self._read_bytes > max_header_bytes:
                    self._too_large()

        def send_400_response(self, msg: str) -> None:
            if self._parsed_bytes > max_header_bytes:
                self._too_large()
            else:
                super().send_400_response(msg)

        def _too_large(self) -> None:
            self._refuse(431, "Request Header Fields Too Large", f"headers over {max_header_bytes} bytes")

        def _start_headers(self) -> None:
            self._in_headers, self._parsed_bytes, self._read_bytes = True, 0, 0
            self._stop_header_timer()
            self._header_timer = self.loop.call_later(header_timeout_s, self._headers_too_slow)

        def _stop_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            if self._in_headers and not self.transport.is_closing():
                self._refuse(408, "Request Timeout", f"headers not complete within {header_timeout_s:g} s")

        def _refuse(self, status: int, reason: str, message: str) -> None:
            body = f'{{"code":"http_{status}","message":"{message}","detail":null}}'.encode()
            head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
                    f"content-length: {len(body)}\r\nconnection: close\r\n\r\n")  # fmt: skip
            self.transport.write(head.encode() + body)
            self.transport.close()

    return LimitedHttpTools


def _kinds(path: str, agent_writes: frozenset[str]) -> tuple[tokens.Kind, ...] | None:
    """The token kinds a write to ``path`` (under ``/v1``) can be done with; ``None`` for no agent or enrollment
    path, which the router answers (404, 405) rather than a token check that would name the wrong kind."""
    if path == f"{API_PREFIX}/enroll":
        return ("enroll", "agent", "admin")
    if path.startswith(f"{API_PREFIX}/admin/"):
        return ("admin",)
    return ("agent",) if path in agent_writes else None


class TokenFirst:
    """Refuses writes under ``/v1`` without a live token of their path's kind before their body is read, and
    times out bodies that take over ``body_timeout_s`` to arrive."""

    def __init__(
        self,
        app: ASGIApp,
        collector: Collector,
        body_timeout_s: float = BODY_TIMEOUT_S,
        agent_writes: frozenset[str] = frozenset(),
    ) -> None:
        """``agent_writes``: the paths agents write to (the agent API's routes)."""
        self.app = app
        self.collector = collector
        self.body_timeout_s = body_timeout_s
        self.agent_writes = agent_writes
        self._known: dict[tuple[str, tuple[str, ...]], float] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        kinds = _kinds(scope["path"], self.agent_writes)
        if kinds is None:
            await self.app(scope, receive, send)
            return
        try:
            await self._check(Headers(scope=scope).get("authorization", ""), kinds)
        except RequestRejected as exc:
            await _answer(exc.status, exc.code, str(exc), scope, receive, send)
            return
        except sa.exc.SQLAlchemyError:
            pass  # the store cannot tell now: the endpoint checks the token itself, and answers for the store
        declared = Headers(scope=scope).get("content-length", "")
        allowed = self.body_timeout_s + (int(declared) / MIN_BODY_BYTES_PER_S if declared.isdigit() else 0.0)
        await self.app(scope, self._timed(receive, allowed), send)

    async def _check(self, authorization: str, kinds: tuple[tokens.Kind, ...]) -> None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated(tokens.MISSING)
        key = (tokens.digest(token.strip()), kinds)
        if self._known.get(key, 0.0) > time.monotonic():
            return
        await run_in_threadpool(self._authenticate, token.strip(), kinds)
        if len(self._known) >= KNOWN_TOKENS_MAX:
            self._known.clear()
        self._known[key] = time.monotonic() + KNOWN_FOR_S

    def _authenticate(self, token: str, kinds: tuple[tokens.Kind, ...]) -> None:
        with self.collector.store.read() as session:
            tokens.authenticate(session, token, kinds, self.collector.clock())

    @staticmethod
    def _timed(receive: Receive, allowed_s: float) -> Receive:
        deadline = time.monotonic() + allowed_s
        complete = False

        async def timed() -> Message:
            nonlocal complete
            if complete:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                raise HTTPException(408, f"the request body did not arrive within {allowed_s:g} s") from None
            complete = not message.get("more_body", False)
            return message

        return timed


async def _answer(status: int, code: str, message: str, scope: Scope, receive: Receive, send: Send) -> None:
    """An error in the collector's shape; the connection closes, so an unread body is never read."""
    body: dict[str, Any] = {"code": code, "message": message, "detail": None}
    await JSONResponse(body, status, headers={"connection": "close"})(scope, receive, send)
