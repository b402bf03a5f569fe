"""The management client: what the CLI, dataset building, search and a researcher's script use to drive a
collector over HTTP.

It belongs to no side: it speaks only ``latbench.protocol``, so its users need not import the collector and the
collector need not know them. Agents have their own client (``latbench.agents.client``); this one speaks the
admin endpoints with the admin token and turns every failure into a ``CollectorError`` whose message says what
to do.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Literal
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter

from latbench.errors import CollectorError, CollectorRejected, CollectorUnavailable, LatbenchError
from latbench.protocol import (
    API_PREFIX,
    AdminTokenCreate,
    AgentInfo,
    AgentRevoked,
    CampaignCreate,
    CampaignCreated,
    CampaignStatus,
    DeviceChanged,
    DeviceInfo,
    DeviceRename,
    DeviceUnretire,
    EnrollmentTokenCreate,
    EnrollmentTokenCreated,
    EnrollmentTokenInfo,
    ModelInfo,
    ModelRef,
    PriorityChange,
)
from latbench.tls import untrusted, verification
from latbench.urls import collector_url

DEFAULT_URL = "http://127.0.0.1:8700"
URL_ENV = "LATBENCH_COLLECTOR"
ADMIN_TOKEN_ENV = "LATBENCH_ADMIN_TOKEN"
MODEL_SUFFIXES = (".onnx", ".tflite")
"""The model files a directory contributes to a campaign."""
CHUNK_BYTES = 2**20
NamedKind = Literal["admin", "metrics"]
"""The token kinds that carry only a name and an expiry (enrollment tokens have limits, agent tokens an agent)."""


class CollectorClient:
    """Admin access to one collector."""

    def __init__(
        self, url: str | None = None, token: str | None = None, timeout_s: float = 30.0, ca_cert: str | None = None
    ) -> None:
        """``ca_cert``: for HTTPS, the CA certificate that verifies the collector (default ``$LATBENCH_CA_CERT``,
        else the system's store; ``latbench.tls``)."""
        self.url = collector_url(url or os.environ.get(URL_ENV) or DEFAULT_URL)
        token = token or os.environ.get(ADMIN_TOKEN_ENV)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        verify = verification(self.url, ca_cert)
        self._http = httpx.Client(base_url=self.url + API_PREFIX, headers=headers, timeout=timeout_s, verify=verify)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CollectorClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _request(self, method: str, path: str, body: BaseModel | None = None, **options: Any) -> httpx.Response:
        if body is not None:
            options["json"] = body.model_dump(mode="json")
        try:
            response = self._http.request(method, path, **options)
        except httpx.HTTPError as exc:
            if (refused := untrusted(exc, self.url)) is not None:
                raise refused from None
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
        return self.create_token("admin", name, expires_at)

    def admin_tokens(self) -> list[EnrollmentTokenInfo]:
        """Every admin token (ids, names, dates; never the tokens themselves), revoked ones included."""
        return self.tokens("admin")

    def revoke_admin_token(self, token_id: str) -> EnrollmentTokenInfo:
        """Revoke the admin token ``token_id`` (an id from ``admin_tokens``, or a token itself)."""
        return self.revoke_token("admin", token_id)

    def create_token(
        self, kind: NamedKind, name: str | None = None, expires_at: datetime | None = None
    ) -> EnrollmentTokenCreated:
        """An admin token, or a metrics token: one that reads ``/metrics`` and nothing else (for Prometheus)."""
        response = self._request("POST", f"/admin/{kind}-tokens", AdminTokenCreate(name=name, expires_at=expires_at))
        return EnrollmentTokenCreated.model_validate(response.json())

    def tokens(self, kind: NamedKind) -> list[EnrollmentTokenInfo]:
        """Every token of ``kind``, revoked ones included."""
        response = self._request("GET", f"/admin/{kind}-tokens")
        return TypeAdapter(list[EnrollmentTokenInfo]).validate_python(response.json())

    def revoke_token(self, kind: NamedKind, token_id: str) -> EnrollmentTokenInfo:
        """Revoke the token ``token_id`` of ``kind`` (an id from ``tokens``, or a token itself); revoking the last
        live admin token is refused."""
        path = f"/admin/{kind}-tokens/{quote(token_id_of(token_id), safe='')}/revoke"
        return EnrollmentTokenInfo.model_validate(self._request("POST", path).json())

    def create_campaign(self, spec: CampaignCreate) -> str:
        return CampaignCreated.model_validate(self._request("POST", "/admin/campaigns", spec).json()).campaign_id

    def model(self, sha256: str) -> ModelInfo | None:
        """The uploaded model file with content hash ``sha256``, if the collector holds it."""
        return self._held(sha256)[0]

    def _held(self, sha256: str) -> tuple[ModelInfo | None, object]:
        """The uploaded model ``sha256``, or ``None`` and the detail of the collector's 404 (which carries its
        upload limit, ``max_bytes``)."""
        try:
            return ModelInfo.model_validate(self._request("GET", f"/admin/models/{sha256}").json()), None
        except CollectorRejected as exc:
            if exc.status == 404:
                return None, exc.detail
            raise

    def upload_model(self, path: str | Path) -> ModelInfo:
        """Upload the model file at ``path`` (streamed) unless the collector holds its content already; the
        collector checks the hash on arrival and refuses a file it cannot time or one over its size limit (a
        file over it is refused here, before a byte of it travels, where the collector tells its limit)."""
        return self._upload(Path(path))[0]

    def _upload(self, path: Path) -> tuple[ModelInfo, bool]:
        """``upload_model``, and whether this call uploaded the file (``False``: the collector held it)."""
        sha256 = _sha256(path)
        size = path.stat().st_size
        held, missing = self._held(sha256)
        if held is not None:
            return held, False
        if (over := _over_limit(path, size, missing)) is not None:
            raise over
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        try:
            with path.open("rb") as f:
                response = self._request("PUT", f"/admin/models/{sha256}", content=_chunks(f), headers=headers)
        except CollectorRejected as exc:
            raise _over_limit(path, size, exc.detail) or CollectorRejected(
                f"{path}: {exc}", exc.status, exc.code, exc.detail
            ) from None
        return ModelInfo.model_validate(response.json()), response.status_code == 201

    def create_model_campaign(
        self,
        paths: Iterable[str | Path],
        runtime: str,
        *,
        input_shapes: Mapping[str, Sequence[int]] | None = None,
        on_upload: Callable[[Path, ModelInfo, bool], None] | None = None,
        **fields: Any,
    ) -> str:
        """Upload model files (a directory gives its ``.onnx`` and ``.tflite`` files) and create a campaign that
        measures them with ``runtime``; ``input_shapes`` fill every model's dynamic input dimensions, ``fields``
        are further ``CampaignCreate`` fields (``name``, ``devices``, ``settings``...). Each model is named by its
        file name, with ``@`` and a hash prefix where two different files share one; a file given twice is
        measured once. ``on_upload`` hears of each file once the collector holds it, and whether it was uploaded
        now (``False``: the collector held its content already)."""
        uploaded: dict[str, Path] = {}
        for path in model_paths(paths):
            found, new = self._upload(path)
            if on_upload is not None:
                on_upload(path, found, new)
            uploaded.setdefault(found.sha256, path)
        names = [path.name for path in uploaded.values()]
        shapes = {name: list(dims) for name, dims in (input_shapes or {}).items()} or None
        models = [
            ModelRef(name=path.name if names.count(path.name) == 1 else f"{path.name}@{sha256[:8]}",
                     sha256=sha256, input_shapes=shapes)
            for sha256, path in uploaded.items()
        ]  # fmt: skip
        return self.create_campaign(CampaignCreate(models=models, runtime=runtime, **fields))

    def campaign(self, campaign_id: str) -> CampaignStatus:
        return CampaignStatus.model_validate(self._request("GET", f"/admin/campaigns/{campaign_id}").json())

    def cancel_campaign(self, campaign_id: str) -> CampaignStatus:
        """Stop leasing the campaign's queued jobs (leased ones may still finish, their results kept); cancelling
        twice is a no-op."""
        return self._campaign_action(campaign_id, "cancel")

    def pause_campaign(self, campaign_id: str) -> CampaignStatus:
        """Lease none of the campaign's jobs until it is resumed; leased ones run out as usual."""
        return self._campaign_action(campaign_id, "pause")

    def resume_campaign(self, campaign_id: str) -> CampaignStatus:
        return self._campaign_action(campaign_id, "resume")

    def set_campaign_priority(self, campaign_id: str, priority: int) -> CampaignStatus:
        """Higher is leased first, from the collector's next lease request on."""
        return self._campaign_action(campaign_id, "priority", PriorityChange(priority=priority))

    def _campaign_action(self, campaign_id: str, action: str, body: BaseModel | None = None) -> CampaignStatus:
        path = f"/admin/campaigns/{quote(campaign_id, safe='')}/{action}"
        return CampaignStatus.model_validate(self._request("POST", path, body).json())

    def campaigns(self) -> list[CampaignStatus]:
        return TypeAdapter(list[CampaignStatus]).validate_python(self._request("GET", "/admin/campaigns").json())

    def revoke_agent(self, name: str) -> AgentRevoked:
        """Revoke agent ``name``'s tokens and put its jobs back in the queue."""
        path = f"/admin/agents/{quote(name, safe='')}/revoke"
        return AgentRevoked.model_validate(self._request("POST", path).json())

    def devices(self, retired: bool = False) -> list[DeviceInfo]:
        """The live devices, and with ``retired`` the retired ones too."""
        params = {"all": "true"} if retired else None
        return TypeAdapter(list[DeviceInfo]).validate_python(
            self._request("GET", "/admin/devices", params=params).json()
        )

    def rename_device(self, name: str, new_name: str) -> DeviceChanged:
        """Rename device ``name``: its results, campaigns and predictor file follow."""
        return self._device_action(name, "rename", DeviceRename(name=new_name))

    def retire_device(self, name: str) -> DeviceChanged:
        """Retire device ``name``: its agents get no more work, and it and its results move to
        ``NAME@retired-DATE`` (the answer's ``name``), freeing ``name`` for replacement hardware."""
        return self._device_action(name, "retire")

    def unretire_device(self, name: str, new_name: str | None = None) -> DeviceChanged:
        """Bring retired device ``name`` back, under ``new_name`` or the name it had before."""
        return self._device_action(name, "unretire", DeviceUnretire(name=new_name))

    def _device_action(self, name: str, action: str, body: BaseModel | None = None) -> DeviceChanged:
        path = f"/admin/devices/{quote(name, safe='')}/{action}"
        return DeviceChanged.model_validate(self._request("POST", path, body).json())

    def agents(self) -> list[AgentInfo]:
        """Every enrolled agent, live or revoked, with its device and current token (its id, never the token)."""
        return TypeAdapter(list[AgentInfo]).validate_python(self._request("GET", "/admin/agents").json())

    def result(self, result_id: str) -> dict[str, Any]:
        """One stored measurement as an export row, its per-operator profile inline (``profile``)."""
        return dict(self._request("GET", f"/admin/results/{quote(result_id, safe='')}").json())

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
            if (refused := untrusted(exc, self.url)) is not None:
                raise refused from None
            raise CollectorUnavailable(f"cannot read results from the collector at {self.url}: {exc}") from exc


def model_paths(paths: Iterable[str | Path]) -> list[Path]:
    """The model files ``paths`` name: files as given, directories by their ``.onnx`` and ``.tflite`` files."""
    found: list[Path] = []
    for given in map(Path, paths):
        if given.is_dir():
            inside = sorted(p for p in given.iterdir() if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES)
            if not inside:
                raise LatbenchError(f"{given} holds no model file (.onnx or .tflite)")
            found += inside
        elif given.is_file():
            found.append(given)
        else:
            raise LatbenchError(f"model {given}: no such file or directory")
    if not found:
        raise LatbenchError("give at least one model file or directory")
    return found


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _over_limit(path: Path, size: int, detail: object) -> CollectorRejected | None:
    """The refusal of the ``size``-byte model file at ``path`` where it is over the upload limit the collector
    told (``detail``'s ``max_bytes``, in a 404 or 413 body); ``None`` where it is within it or untold."""
    limit = detail.get("max_bytes") if isinstance(detail, dict) else None
    if not isinstance(limit, int) or size <= limit:
        return None
    mib = [f"{n / 2**20:.1f} MiB" for n in (size, limit)]
    shown = mib if mib[0] != mib[1] else [f"{n:,} bytes" for n in (size, limit)]
    return CollectorRejected(
        f"{path} is {shown[0]}; this collector takes model files up to {shown[1]} (collector serve --max-model-mb)",
        413,
        "too_large",
        detail,
    )


def _chunks(f: BinaryIO) -> Iterator[bytes]:
    while chunk := f.read(CHUNK_BYTES):
        yield chunk


def token_id_of(token: str) -> str:
    """The id inside a generated token (``lb_<kind>_<id>_<secret>``); anything else is taken to be an id."""
    parts = token.split("_")
    return parts[2] if len(parts) >= 4 and parts[0] == "lb" else token


def _refusal(response: httpx.Response) -> CollectorError:
    cls = CollectorRejected if response.status_code < 500 else CollectorUnavailable
    detail = None
    try:
        body = response.json()
        code, message = str(body.get("code", "error")), str(body.get("message", response.text))
        detail = body.get("detail")
    except (ValueError, AttributeError):
        code, message = "error", response.text.strip() or response.reason_phrase
    hint = " (set LATBENCH_ADMIN_TOKEN or pass --token)" if response.status_code == 401 else ""
    message = f"collector refused ({response.status_code} {code}): {message}{hint}"
    return cls(message, response.status_code, code, detail)
