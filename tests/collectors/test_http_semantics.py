"""HTTP as specified where FastAPI leaves it to the app: HEAD answers wherever GET does (the GET's status, headers
and authentication, no body), and a JSON body sent as another media type is a 415 saying how to send it."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from latbench.agents.client import AgentClient
from latbench.client import CollectorClient
from latbench.collectors.app import ROUTERS
from latbench.protocol import EnrollRequest
from tests.support.served import ADMIN_TOKEN, MACHINE, Harness, fingerprint

PLACEHOLDER = "0" * 64
"""Fills every path parameter: a well-formed sha256 (and name, id) that no stored thing has."""


def get_paths() -> list[str]:
    """Every path a GET route of the app serves, its parameters filled with ``PLACEHOLDER``."""
    paths = {route.path for r in ROUTERS for route in r.routes if "GET" in (getattr(route, "methods", None) or ())}
    return sorted(re.sub(r"\{[^}]+\}", PLACEHOLDER, path) for path in paths)


def headers(response: httpx.Response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name != "date"}


def bearer(client: httpx.Client) -> dict[str, str]:
    return {"Authorization": client.headers["authorization"]}


def test_every_get_route_answers_head_with_the_gets_status_and_headers_and_no_body(collector: Harness):
    callers = {"nobody": {}, "admin": bearer(collector.admin), "agent": bearer(collector.agent("a1"))}
    paths = [*get_paths(), "/static/app.js"]
    seen = set()
    with httpx.Client(base_url=collector.url, timeout=60) as http:
        for path in paths:
            for who, auth in callers.items():
                get, head = http.get(path, headers=auth), http.head(path, headers=auth)
                assert head.status_code == get.status_code != 405, (path, who, head.status_code, get.text)
                assert headers(head) == headers(get) and head.content == b"", (path, who)
                seen.add(get.status_code)
        assert seen == {200, 401, 403, 404}  # public pages and lists, refused callers, things that do not exist
        health = http.head("/v1/health")
        assert health.status_code == 200 and int(health.headers["content-length"]) == len(
            http.get("/v1/health").content
        )
        assert http.head("/v1/admin/campaigns").status_code == 401
        assert http.head("/v1/admin/campaigns", headers=callers["agent"]).status_code == 403


def test_head_of_an_artifact_gives_its_length_without_reading_the_file(
    collector: Harness, conv_model: Path, monkeypatch: pytest.MonkeyPatch
):
    content = conv_model.read_bytes()
    sha256 = hashlib.sha256(content).hexdigest()
    assert collector.admin.put(f"/admin/models/{sha256}", content=content).status_code == 201
    opened: list[str] = []
    open_file = anyio.open_file

    async def recorded(file: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(file))
        return await open_file(file, *args, **kwargs)

    monkeypatch.setattr(anyio, "open_file", recorded)
    agent = collector.agent("a1")
    head = agent.head(f"/artifacts/{sha256}")
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(content)
    assert head.headers["content-type"] == "application/octet-stream"
    assert not [name for name in opened if sha256 in name]
    get = agent.get(f"/artifacts/{sha256}")
    assert hashlib.sha256(get.content).hexdigest() == sha256 and headers(get) == headers(head)
    assert [name for name in opened if sha256 in name]  # the GET reads it through what was watched
    assert collector.client().head(f"/artifacts/{sha256}").status_code == 401


def test_a_405_allows_head_wherever_get_is_allowed_and_openapi_lists_no_head(collector: Harness):
    response = collector.admin.delete("/admin/campaigns")
    assert response.status_code == 405 and response.headers["allow"] == "GET, HEAD, POST"
    head = collector.agent("a1").head("/leases")
    assert head.status_code == 405 and head.headers["allow"] == "POST" and head.content == b""
    operations = httpx.get(collector.url + "/openapi.json").json()["paths"]
    assert operations["/v1/health"].keys() == {"get"}
    assert not [path for path, methods in operations.items() if "head" in methods]


def json_body_routes(collector: Harness) -> list[tuple[str, str]]:
    """Every (method, path) whose OpenAPI request body is JSON."""
    operations = httpx.get(collector.url + "/openapi.json").json()["paths"]
    return [(method.upper(), path) for path, methods in operations.items() for method, operation in methods.items()
            if "application/json" in operation.get("requestBody", {}).get("content", {})]  # fmt: skip


WRONG_TYPES = ["application/x-www-form-urlencoded", "text/plain", "application/jsonx", None]


def test_a_json_body_sent_as_another_media_type_is_415_saying_to_send_json(collector: Harness):
    enroll = {"Authorization": f"Bearer {collector.enroll_token()}"}
    tokens = {"/v1/admin/": bearer(collector.admin), "/v1/enroll": enroll, "/v1/": bearer(collector.agent("a1"))}
    routes = json_body_routes(collector)
    assert {("POST", "/v1/admin/campaigns"), ("POST", "/v1/enroll"), ("POST", "/v1/results")} <= set(routes)
    before = collector.dump()
    for method, path in routes:
        auth = next(auth for prefix, auth in tokens.items() if path.startswith(prefix))
        for content_type in WRONG_TYPES:
            sent = {**auth, **({"Content-Type": content_type} if content_type else {})}
            response = httpx.request(method, collector.url + path, content=b"{}", headers=sent)
            assert response.status_code == 415, (path, content_type, response.text)
            body = response.json()
            assert body["code"] == "unsupported_media_type" and body["detail"] is None
            assert "send the body as JSON with 'Content-Type: application/json'" in body["message"]
            assert (content_type or "no Content-Type") in body["message"]
    assert collector.dump() == before


def test_json_with_a_charset_and_the_projects_clients_are_accepted(collector: Harness):
    utf8 = {"Content-Type": "application/json; charset=utf-8"}
    response = collector.admin.post("/admin/enrollment-tokens", content=b'{"name": "charset"}', headers=utf8)
    assert response.status_code == 201 and response.json()["name"] == "charset"
    assert collector.agent("a1").post("/leases", content=b"{}", headers=utf8).status_code == 200
    with CollectorClient(collector.url, ADMIN_TOKEN) as admin:
        token = admin.create_enrollment_token("clients").token
    request = EnrollRequest.model_validate({"name": "via-client", "fingerprint": fingerprint("via-client"),
                                            "machine": MACHINE, "runtimes": [{"name": "onnxruntime",
                                            "version": "1.20.0", "providers": ["cpu"]}]})  # fmt: skip
    with AgentClient(collector.url) as agent:
        agent.token = agent.enroll(request, token).agent_token
        assert agent.heartbeat([]).renewed == []


def test_model_uploads_take_raw_bytes_whatever_their_content_type(collector: Harness, conv_model: Path):
    content = conv_model.read_bytes()
    sha256 = hashlib.sha256(content).hexdigest()
    statuses = []
    for content_type in ("application/octet-stream", "text/plain", None):
        sent = {"Content-Type": content_type} if content_type else {}
        statuses.append(collector.admin.put(f"/admin/models/{sha256}", content=content, headers=sent).status_code)
    assert statuses == [201, 200, 200]
