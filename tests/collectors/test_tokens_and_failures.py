"""Enrollment-token revocation (endpoint and CLI), and a failed artifact build reported by campaign status."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from latbench.catalog import DatasetCatalog
from latbench.collectors import tokens
from latbench.collectors.service import running
from latbench.errors import LatbenchError, Unauthenticated
from tests.support.served import ADMIN_TOKEN, Clock, Harness, Served

CLI = [sys.executable, "-m", "latbench"]


def cli(harness: Harness, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args, "--collector", harness.url, "--token", ADMIN_TOKEN], capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def test_a_revoked_enrollment_token_enrolls_no_one_but_enrolled_agents_keep_working(collector: Harness):
    agent = collector.agent("pi-1")
    token = collector.enroll_token()
    listed = collector.admin.get("/admin/enrollment-tokens").json()
    assert [(t["name"], t["revoked_at"]) for t in listed] == [("tests", None)]
    assert token not in json.dumps(listed)
    token_id = listed[0]["token_id"]
    response = collector.admin.post(f"/admin/enrollment-tokens/{token_id}/revoke")
    assert response.status_code == 200 and response.json()["revoked_at"] is not None
    refused = collector.enroll("pi-2")
    assert refused.status_code == 401 and refused.json()["code"] == "unauthenticated"
    assert agent.post("/heartbeat", json={}).status_code == 200
    again = collector.admin.post(f"/admin/enrollment-tokens/{token_id}/revoke")
    assert again.json()["revoked_at"] == response.json()["revoked_at"]


def test_revoking_needs_the_admin_token_and_an_existing_enrollment_token(collector: Harness):
    agent = collector.agent("pi-1")
    token_id = collector.admin.get("/admin/enrollment-tokens").json()[0]["token_id"]
    before = collector.dump()
    assert agent.post(f"/admin/enrollment-tokens/{token_id}/revoke").status_code == 403
    assert collector.client().post(f"/admin/enrollment-tokens/{token_id}/revoke").status_code == 401
    for unknown in ("0123456789abcdef", "env-admin"):
        response = collector.admin.post(f"/admin/enrollment-tokens/{unknown}/revoke")
        assert response.status_code == 404 and "no enrollment token" in response.json()["message"]
    assert collector.dump() == before


@pytest.mark.slow  # CLI subprocesses
def test_token_list_and_revoke_on_the_command_line(collector: Harness):
    collector.enroll_token()
    created = cli(collector, "token", "create", "--name", "lab")
    assert created.returncode == 0, created.stderr
    listed = cli(collector, "token", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    ids = {t["name"]: t["token_id"] for t in json.loads(listed.stdout)}
    assert set(ids) == {"tests", "lab"}
    revoked = cli(collector, "token", "revoke", created.stdout.strip())  # the token itself names its id
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.strip() == ids["lab"]
    assert collector.client(created.stdout.strip()).post("/enroll", json={}).status_code == 401
    table = cli(collector, "token", "list")
    assert "lab" in table.stdout and table.stdout.count("-") >= 1
    missing = cli(collector, "token", "revoke", "0123456789abcdef")
    assert missing.returncode == 1 and "no enrollment token" in missing.stderr and "Traceback" not in missing.stderr


@pytest.mark.slow
def test_a_failed_artifact_build_fails_the_campaign_with_its_error(db_url: str, tmp_path: Path, clock: Clock):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("the artifact cache cannot live under a file\n")
    with Served(db_url, blocked / "artifacts", clock) as harness:
        campaign = harness.campaign(wait=False, samples=2, name="doomed")
        for _ in range(600):
            status = harness.status(campaign)
            if status["state"] != "building":
                break
            time.sleep(0.05)
        assert status["state"] == "failed", status
        assert status["error"].startswith("cannot build the reference model: "), status["error"]
        agent = harness.agent("pi-1")
        assert agent.post("/leases", json={"max_jobs": 4}).json()["jobs"] == []
        shown = cli(harness, "campaign", "status", campaign)
        assert shown.returncode == 0, shown.stderr
        assert "failed" in shown.stdout and "cannot build the reference model" in shown.stdout
        listed = cli(harness, "campaign", "list", "--json")
        assert json.loads(listed.stdout)[0]["error"] == status["error"]


def test_admin_tokens_are_created_listed_revoked_and_expire(collector: Harness):
    expiry = (collector.clock.now + timedelta(seconds=60)).isoformat()
    created = collector.admin.post("/admin/admin-tokens", json={"name": "ops", "expires_at": expiry}).json()
    ops = collector.client(created["token"])
    assert created["token"].startswith("lb_admin_") and ops.get("/admin/devices").status_code == 200
    names = sorted(t["name"] for t in collector.admin.get("/admin/admin-tokens").json())
    assert names == ["LATBENCH_ADMIN_TOKEN", "ops"]
    collector.clock.advance(61)
    assert ops.get("/admin/devices").status_code == 401
    again = collector.client(collector.admin.post("/admin/admin-tokens", json={"name": "ops-2"}).json()["token"])
    revoked = again.post("/admin/admin-tokens/env-admin/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert collector.admin.get("/admin/devices").status_code == 401
    last = again.post(f"/admin/admin-tokens/{tokens.token_id(again.headers['Authorization'][7:])}/revoke")
    assert last.status_code == 409 and "last live admin token" in last.json()["message"]
    assert again.post("/admin/admin-tokens/nope/revoke").status_code == 404


def test_a_weak_admin_token_is_refused_at_start(tmp_path: Path, artifact_cache: Path):
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    for weak in ("a", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "short-but-mixed-0123"):
        too_weak = pytest.raises(LatbenchError, match="LATBENCH_ADMIN_TOKEN is too weak")
        with too_weak, running(url, artifact_cache, catalog=DatasetCatalog(), admin_token=weak):
            pass


def test_a_configured_admin_token_replaces_the_first_start_token(tmp_path: Path, artifact_cache: Path):
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    with running(url, artifact_cache, catalog=DatasetCatalog()) as (_, generated):
        assert generated is not None
    configured = running(url, artifact_cache, catalog=DatasetCatalog(), admin_token=ADMIN_TOKEN)
    with configured as (app, _), app.state.collector.store.read() as session:
        with pytest.raises(Unauthenticated):
            tokens.authenticate(session, generated, "admin", datetime.now(timezone.utc))
        assert tokens.authenticate(session, ADMIN_TOKEN, "admin", datetime.now(timezone.utc)).kind == "admin"
