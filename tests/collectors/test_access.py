"""Who has access: the configured admin token across restarts and replicas, and the agents list with their state."""

from __future__ import annotations

import logging
import re
import secrets
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from latbench.catalog import DatasetCatalog
from latbench.collectors import tokens
from latbench.collectors.service import running
from latbench.errors import LatbenchError, Unauthenticated
from tests.support.processes import LATBENCH, Collector, env
from tests.support.served import ADMIN_TOKEN, Clock, Harness, Served

REVOKED = re.compile(
    r"^error: LATBENCH_ADMIN_TOKEN was revoked at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC; set a new LATBENCH_ADMIN_TOKEN"
)


def _value() -> str:
    return secrets.token_urlsafe(32)


def _status(url: str, token: str) -> int:
    with httpx.Client(base_url=url + "/v1", headers={"Authorization": f"Bearer {token}"}) as http:
        return http.get("/admin/devices").status_code


def _refused_start(db_url: str, data_dir: Path, admin_token: str) -> str:
    """A replica started on ``db_url`` with ``admin_token``: it must exit 1 with one error line; that line."""
    args = ["collector", "serve", "--port", "0", "--data-dir", str(data_dir), "--db", db_url]
    done = subprocess.run([*LATBENCH, *args], capture_output=True, text=True, timeout=120,
                          env=env(LATBENCH_ADMIN_TOKEN=admin_token))  # fmt: skip
    assert done.returncode == 1, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert admin_token not in line
    return line


def _started(db_url: str, data_dir: Path, artifacts: Path, admin_token: str) -> Collector:
    return Collector(db_url, data_dir, 0, artifacts=artifacts, admin_token=admin_token).start()


@pytest.mark.slow  # collector processes
def test_a_rotated_or_revoked_configured_admin_token_never_comes_back(
    db_url: str, tmp_path: Path, artifact_cache: Path
):
    """The operator's reproduction: a replica started with a stale value, and a restart after revoking the
    configured token through the API. Neither may bring the old value back or lock the admins out."""
    old, new = _value(), _value()
    first = _started(db_url, tmp_path / "a", artifact_cache, old)
    try:
        assert _status(first.url, old) == 200
    finally:
        assert first.stop() == 0
    same = _started(db_url, tmp_path / "a", artifact_cache, old)
    try:
        assert "LATBENCH_ADMIN_TOKEN" not in same.printed and _status(same.url, old) == 200
    finally:
        assert same.stop() == 0
    rotated = _started(db_url, tmp_path / "a", artifact_cache, new)
    try:
        assert "LATBENCH_ADMIN_TOKEN is new to this store: it replaces admin token env-" in rotated.printed
        assert old not in rotated.printed and new not in rotated.printed
        assert (_status(rotated.url, new), _status(rotated.url, old)) == (200, 401)
        # a second replica whose environment still holds the old value
        assert REVOKED.match(_refused_start(db_url, tmp_path / "b", old))
        assert (_status(rotated.url, new), _status(rotated.url, old)) == (200, 401)
        with httpx.Client(base_url=rotated.url + "/v1", headers={"Authorization": f"Bearer {new}"}) as http:
            listed = {t["name"]: t["revoked_at"] for t in http.get("/admin/admin-tokens").json()}
            assert listed["LATBENCH_ADMIN_TOKEN"] is None and listed["previous LATBENCH_ADMIN_TOKEN"] is not None
            spare = http.post("/admin/admin-tokens", json={"name": "spare"}).json()["token"]
        with httpx.Client(base_url=rotated.url + "/v1", headers={"Authorization": f"Bearer {spare}"}) as http:
            assert http.post("/admin/admin-tokens/env-admin/revoke").status_code == 200
        assert _status(rotated.url, new) == 401
    finally:
        assert rotated.stop() == 0
    assert REVOKED.match(_refused_start(db_url, tmp_path / "a", new))
    adopted = _started(db_url, tmp_path / "a", artifact_cache, spare)  # made by `token create --admin`, never env
    try:
        assert "LATBENCH_ADMIN_TOKEN" not in adopted.printed
        assert [_status(adopted.url, t) for t in (spare, new, old)] == [200, 401, 401]
    finally:
        assert adopted.stop() == 0


def _start(db_url: str, artifacts: Path, admin_token: str | None, clock: Clock) -> Any:
    """The collector's start (``running``) on ``db_url``, as ``collector serve`` does it, without serving."""
    return running(db_url, artifacts, catalog=DatasetCatalog(), admin_token=admin_token, clock=clock)


def _refusal(db_url: str, artifacts: Path, admin_token: str, clock: Clock) -> str:
    """Why the collector refused to start with ``admin_token``."""
    with pytest.raises(LatbenchError) as refused, _start(db_url, artifacts, admin_token, clock):
        pass
    return str(refused.value)


def test_a_configured_admin_token_is_refused_once_revoked_or_expired_and_logged_when_new(
    db_url: str, artifact_cache: Path, clock: Clock, caplog: pytest.LogCaptureFixture
):
    with Served(db_url, artifact_cache, clock) as harness:
        created = harness.admin.post("/admin/admin-tokens", json={"name": "ops"}).json()["token"]
        expiring = harness.admin.post("/admin/admin-tokens", json={"name": "brief", "expires_at": (
            clock.now + timedelta(seconds=60)).isoformat()}).json()["token"]  # fmt: skip
        assert harness.client(created).post("/admin/admin-tokens/env-admin/revoke").status_code == 200
        assert harness.admin.get("/admin/devices").status_code == 401
    assert REVOKED.match("error: " + _refusal(db_url, artifact_cache, ADMIN_TOKEN, clock))
    clock.advance(61)
    assert _refusal(db_url, artifact_cache, expiring, clock).startswith("LATBENCH_ADMIN_TOKEN expired at ")
    forged = expiring[:-1] + ("y" if expiring[-1] != "y" else "z")
    assert "has the id of admin token" in _refusal(db_url, artifact_cache, forged, clock)
    fresh = _value()
    watched = caplog.at_level(logging.WARNING, logger="latbench.collectors.tokens")
    with watched, _start(db_url, artifact_cache, fresh, clock) as (app, _), app.state.collector.store.read() as session:
        assert tokens.authenticate(session, fresh, "admin", clock()).id == tokens.ENV_ADMIN_ID
        assert tokens.authenticate(session, created, "admin", clock()).name == "ops"  # an API token stays
        with pytest.raises(Unauthenticated):
            tokens.authenticate(session, ADMIN_TOKEN, "admin", clock())
    [record] = caplog.records
    assert "replaces admin token env-" in record.getMessage() and fresh not in record.getMessage()


def test_the_printed_first_start_token_may_be_configured_and_keeps_working(db_url: str, artifact_cache: Path):
    now = Clock()
    with _start(db_url, artifact_cache, None, now) as (_, generated):
        assert generated is not None
    with _start(db_url, artifact_cache, generated, now) as (app, _), app.state.collector.store.read() as session:
        assert tokens.authenticate(session, generated, "admin", now()).name == tokens.FIRST_START


def test_the_agents_list_tells_live_from_revoked_and_devices_keep_revoked_agents_apart(collector: Harness):
    enrolled = {name: collector.enroll(name, device="bench").json() for name in ("pi-1", "pi-2")}
    assert collector.admin.post("/admin/agents/pi-1/revoke").status_code == 200
    listed = {a["name"]: a for a in collector.admin.get("/admin/agents").json()}
    assert {name: (a["state"], a["device"]) for name, a in listed.items()} == {
        "pi-1": ("revoked", "bench"),
        "pi-2": ("live", "bench"),
    }
    for name, agent in listed.items():
        assert agent["token_id"] == tokens.token_id(enrolled[name]["agent_token"])
        assert agent["agent_id"] == enrolled[name]["agent_id"] and agent["token_created_at"] is not None
    assert listed["pi-1"]["revoked_at"] is not None and listed["pi-2"]["revoked_at"] is None
    assert enrolled["pi-2"]["agent_token"] not in str(listed)
    [device] = collector.admin.get("/admin/devices").json()
    assert (device["agents"], device["revoked_agents"], device["conflicts"]) == (["pi-2"], ["pi-1"], [])
    again = collector.enroll("pi-1", device="bench", token=ADMIN_TOKEN).json()
    back = {a["name"]: a for a in collector.admin.get("/admin/agents").json()}["pi-1"]
    assert back["state"] == "live" and back["token_id"] == tokens.token_id(again["agent_token"])
    [device] = collector.admin.get("/admin/devices").json()
    assert device["agents"] == ["pi-1", "pi-2"] and "revoked_agents" not in device  # as an older client knows it
    assert collector.agent("pi-3").get("/admin/agents").status_code == 403
    assert collector.client().get("/admin/agents").status_code == 401


def test_an_agent_refreshed_at_the_same_instant_is_live(collector: Harness):
    """The clock stands still: the refreshed token and the one it revoked share a creation time."""
    first = collector.enroll("pi-1").json()
    refreshed = collector.enroll("pi-1", token=first["agent_token"])
    assert refreshed.status_code == 201, refreshed.text
    [agent] = collector.admin.get("/admin/agents").json()
    assert agent["state"] == "live" and agent["token_id"] == tokens.token_id(refreshed.json()["agent_token"])
