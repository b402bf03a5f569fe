"""HTTP behaviour FastAPI leaves to the application: HEAD wherever GET is served, and a 415 for a body sent as
another media type than the JSON its route reads.

FastAPI's routes answer only the methods they declare, so a monitoring probe or ``curl -I`` got a 405 where GET
answers; ``HeadAsGet`` serves every HEAD as the GET of the same URL (the same authentication, status and headers)
without the body. FastAPI validates a body sent as another media type (``curl -d``'s form encoding, say) as raw
bytes and answers "Input should be a valid dictionary"; ``json_body`` refuses it first, saying how to send it.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from latbench.errors import RequestRejected

JSON = "application/json"
SHOWN_TYPE_CHARS = 80
"""The most of a refused Content-Type an error repeats."""


class UnsupportedMediaType(RequestRejected):
    """A body sent as another media type than the JSON its route reads."""

    status = 415
    code = "unsupported_media_type"


def is_json(content_type: str | None) -> bool:
    """``application/json`` or a ``+json`` type, with any parameters (``charset=utf-8``): what FastAPI parses."""
    media_type = (content_type or "").partition(";")[0].strip().lower()
    return media_type == JSON or (media_type.startswith("application/") and media_type.endswith("+json"))


async def json_body(request: Request) -> bytes:
    """The request's body, refused (415) unless it is empty or sent as JSON."""
    body = await request.body()
    content_type = request.headers.get("content-type")
    if body and not is_json(content_type):
        sent = f"Content-Type {content_type[:SHOWN_TYPE_CHARS]!r}" if content_type else "no Content-Type"
        raise UnsupportedMediaType(f"send the body as JSON with 'Content-Type: {JSON}' (this one came with {sent})")
    return body


class JsonBodyRoute(APIRoute):
    """A route whose body FastAPI parses has its media type checked first (``json_body``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def checked(request: Request) -> Response:
            await json_body(request)
            return await handler(request)

        return checked


def with_head(methods: Iterable[str]) -> list[str]:
    """``methods`` and, where GET is one, HEAD (``HeadAsGet``), sorted: a 405's ``Allow``."""
    served = set(methods)
    return sorted(served | {"HEAD"} if "GET" in served else served)


class HeadAsGet:
    """Serves HEAD as GET without the body (RFC 9110, 9.3.2): every route, error and header is the GET's, so a
    HEAD is authenticated as its GET would be and its Content-Length is the GET body's.

    The app sees a GET offered the ASGI ``http.response.pathsend`` extension, which this answers with no body: a
    file response (an artifact) then sends its headers without reading the file.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            elif message["type"] == "http.response.pathsend":
                message = {"type": "http.response.body", "body": b""}
            await send(message)

        extensions = {**(scope.get("extensions") or {}), "http.response.pathsend": {}}
        await self.app({**scope, "method": "GET", "extensions": extensions}, receive, headers_only)
