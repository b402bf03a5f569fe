"""The management client: what the CLI, dataset building, search and a researcher's script use to drive a
collector over HTTP.

It belongs to no side: it speaks only ``latbench.protocol``, so its users need not import the collector and the
collector need not know them. Agents have their own client (``latbench.agents.client``); this one speaks the
admin endpoints with the admin token and turns every failure into a ``CollectorError`` whose message says what
to do.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter

from latbench.errors import CollectorError, CollectorRejected, CollectorUnavailable
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
)

DEFAULT_URL = "http://127.0.0.1:8700"
URL_ENV = "LATBENCH_COLLECTOR"
ADMIN_TOKEN_ENV = "LATBENCH_ADMIN_TOKEN"


class CollectorClient:
    """Admin access to one collector."""

    def __init__(self, url: str | None = None, token: str | None = None, timeout_s: float = 30.0) -> None:
        self.url = (url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
        token = token or os.environ.get(ADMIN_TOKEN_ENV)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url + API_PREFIX, headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CollectorClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _request(self, method: str, path: str, body: BaseModel | None = None) -> httpx.Response:
        try:
            response = self._http.request(method, path, json=body.model_dump(mode="json") if body else None)
        except httpx.HTTPError as exc:
            raise CollectorUnavailable(f"cannot reach the collector at {self.url}: {exc}") from exc
        if response.is_error:
            raise _refusal(response)
        return response

    def health(self) -> dict[str, Any]:
        return self._request("GET", "/health").json()

    def create_enrollment_token(self, name: str | None = None, **limits: Any) -> EnrollmentTokenCreated:
        """``limits``: ``EnrollmentTokenCreate``'s ``expires_at``, ``max_uses`` and ``agent_names``."""
        response = self._request("POST", "/admin/enrollment-tokens", EnrollmentTokenCreate(name=name, **limits))
        return EnrollmentTokenCreated.model_validate(response.json())

    def enrollment_tokens(self) -> list[EnrollmentTokenInfo]:
        """Every enrollment token (ids, names, dates; never the tokens themselves), revoked ones included."""
        response = self._request("GET", "/admin/enrollment-tokens")
        return TypeAdapter(list[EnrollmentTokenInfo]).validate_python(response.json())

    def revoke_enrollment_token(self, token_id: str) -> EnrollmentTokenInfo:
        """Stop new enrollments with ``token_id`` (an id from ``enrollment_tokens``, or a token itself)."""
        path = f"/admin/enrollment-tokens/{quote(token_id_of(token_id), safe='')}/revoke"
        return EnrollmentTokenInfo.model_validate(self._request("POST", path).json())

    def create_admin_token(self, name: str | None = None, expires_at: datetime | None = None) -> EnrollmentTokenCreated:
        response = self._request("POST", "/admin/admin-tokens", AdminTokenCreate(name=name, expires_at=expires_at))
        return EnrollmentTokenCreated.model_validate(response.json())

    def admin_tokens(self) -> list[EnrollmentTokenInfo]:
        """Every admin token (ids, names, dates; never the tokens themselves), revoked ones included."""
        response = self._request("GET", "/admin/admin-tokens")
        return TypeAdapter(list[EnrollmentTokenInfo]).validate_python(response.json())

    def revoke_admin_token(self, token_id: str) -> EnrollmentTokenInfo:
        """Revoke the admin token ``token_id`` (an id from ``admin_tokens``, or a token itself)."""
        path = f"/admin/admin-tokens/{quote(token_id_of(token_id), safe='')}/revoke"
        return EnrollmentTokenInfo.model_validate(self._request("POST", path).json())

    def create_campaign(self, spec: CampaignCreate) -> str:
        return CampaignCreated.model_validate(self._request("POST", "/admin/campaigns", spec).json()).campaign_id

    def campaign(self, campaign_id: str) -> CampaignStatus:
        return CampaignStatus.model_validate(self._request("GET", f"/admin/campaigns/{campaign_id}").json())

    def campaigns(self) -> list[CampaignStatus]:
        return TypeAdapter(list[CampaignStatus]).validate_python(self._request("GET", "/admin/campaigns").json())

    def revoke_agent(self, name: str) -> AgentRevoked:
        """Revoke agent ``name``'s tokens and put its jobs back in the queue."""
        path = f"/admin/agents/{quote(name, safe='')}/revoke"
        return AgentRevoked.model_validate(self._request("POST", path).json())

    def devices(self) -> list[DeviceInfo]:
        return TypeAdapter(list[DeviceInfo]).validate_python(self._request("GET", "/admin/devices").json())

    def iter_results(self, campaign_id: str) -> Iterator[dict[str, Any]]:
        """Rows of a campaign's results (``latbench measure`` columns plus ``device`` and ``agent``), streamed."""
        path = f"/admin/campaigns/{campaign_id}/results"
        try:
            with self._http.stream("GET", path) as response:
                if response.is_error:
                    response.read()
                    raise _refusal(response)
                for line in response.iter_lines():
                    if line.strip():
                        yield json.loads(line)
        except httpx.HTTPError as exc:
            raise CollectorUnavailable(f"cannot read results from the collector at {self.url}: {exc}") from exc


def token_id_of(token: str) -> str:
    """The id inside a generated token (``lb_<kind>_<id>_<secret>``); anything else is taken to be an id."""
    parts = token.split("_")
    return parts[2] if len(parts) >= 4 and parts[0] == "lb" else token


def _refusal(response: httpx.Response) -> CollectorError:
    cls = CollectorRejected if response.status_code < 500 else CollectorUnavailable
    try:
        body = response.json()
        code, message = str(body.get("code", "error")), str(body.get("message", response.text))
    except ValueError:
        code, message = "error", response.text.strip() or response.reason_phrase
    hint = " (set LATBENCH_ADMIN_TOKEN or pass --token)" if response.status_code == 401 else ""
    return cls(f"collector refused ({response.status_code} {code}): {message}{hint}", response.status_code, code)
