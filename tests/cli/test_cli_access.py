"""Who has access, on the command line: tokens with their status, agents live or revoked, and ``--json`` on every
token, agents and devices command meaning one JSON document on stdout."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from tests.support.served import Harness


def _json(harness: Harness, *args: str) -> Any:
    done = harness.run_cli(*args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.slow  # CLI subprocesses
def test_token_list_says_which_tokens_still_work(served: Harness):
    soon = (datetime.now(timezone.utc) + timedelta(seconds=0.5)).isoformat()
    made = {
        name: served.admin.post("/admin/enrollment-tokens", json={"name": name, **limits}).json()
        for name, limits in (("open", {}), ("brief", {"expires_at": soon}), ("once", {"max_uses": 1}), ("gone", {}))
    }
    assert served.enroll("pi-1", token=made["once"]["token"]).status_code == 201
    assert served.admin.post(f"/admin/enrollment-tokens/{made['gone']['token_id']}/revoke").status_code == 200
    time.sleep(0.6)
    listed = {t["name"]: t for t in _json(served, "token", "list")}
    assert {name: t["status"] for name, t in listed.items()} == {
        "open": "live",
        "brief": "expired",
        "once": "used up",
        "gone": "revoked",
    }
    assert (listed["once"]["uses"], listed["once"]["max_uses"]) == (1, 1)
    table = served.run_cli("token", "list").stdout
    assert "used up" in table and "expired" in table and "1 of 1" in table and "status" in table
    [admin] = _json(served, "token", "list", "--admin")
    assert admin["status"] == "live" and admin["name"] == "LATBENCH_ADMIN_TOKEN"


@pytest.mark.slow
def test_json_is_one_document_on_stdout_for_token_agents_and_devices_commands(served: Harness):
    created = _json(served, "token", "create", "--name", "lab", "--max-uses", "5")
    assert set(created) == {"token_id", "name", "token"} and created["token"].startswith("lb_enroll_")
    admin = _json(served, "token", "create", "--admin", "--name", "ops")
    assert admin["token"].startswith("lb_admin_") and admin["name"] == "ops"
    plain = served.run_cli("token", "create", "--name", "plain")
    assert plain.returncode == 0 and plain.stdout.strip().startswith("lb_enroll_")  # the token alone, as before
    for name in ("pi-1", "pi-2"):
        assert served.enroll(name, device="bench", token=created["token"]).status_code == 201
    revoked = _json(served, "agents", "revoke", "pi-1")
    assert revoked["name"] == "pi-1" and revoked["released"] == 0 and revoked["agent_id"]
    agents = {a["name"]: a for a in _json(served, "agents", "list")}
    assert {name: (a["state"], a["device"]) for name, a in agents.items()} == {
        "pi-1": ("revoked", "bench"),
        "pi-2": ("live", "bench"),
    }
    table = served.run_cli("agents", "list").stdout
    assert "pi-1" in table and "revoked" in table and "live" in table
    [device] = _json(served, "devices")
    assert device["name"] == device["device"] == "bench"  # `device` as campaign status --json names it
    assert (device["agents"], device["revoked_agents"]) == (["pi-2"], ["pi-1"])
    assert "pi-1 (revoked)" in served.run_cli("devices").stdout
    gone = _json(served, "token", "revoke", created["token_id"])
    assert gone["token_id"] == created["token_id"] and gone["status"] == "revoked"
    plain_revoke = served.run_cli("token", "revoke", plain.stdout.strip())
    assert plain_revoke.stdout.strip() == plain.stdout.strip().split("_")[2]
