"""A device's lifecycle over HTTP: an admin renames a device, retires it (its agents are refused, its name is
freed for replacement hardware, its results stay its own under ``NAME@retired-DATE``) and unretires it."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from latbench.catalog import PredictorAcquirer
from latbench.collectors.db import Store
from latbench.collectors.migrations import upgrade
from tests.collectors.test_adaptive_campaigns import measure_until_stopped
from tests.support.adaptive import PLAN
from tests.support.processes import Agent, wait_for
from tests.support.served import ADMIN_TOKEN, ARCHS, Clock, Harness, Served, fingerprint, measurement

REPLACEMENT = "aaaabbbbccccdddd"
"""The fingerprint of the board that replaces ``rack-node-05`` (the operator's reproduction)."""


def _leased(agent: httpx.Client, n: int) -> list[dict[str, Any]]:
    response = agent.post("/leases", json={"max_jobs": n})
    assert response.status_code == 200, response.text
    return list(response.json()["jobs"])


def _push(agent: httpx.Client, jobs: list[dict[str, Any]]) -> None:
    response = agent.post("/results", json={"results": [measurement(job) for job in jobs]})
    assert response.status_code == 200, response.text


def _exported(collector: Harness, campaign: str) -> list[str]:
    """The device of each exported result row, sorted."""
    response = collector.admin.get(f"/admin/campaigns/{campaign}/results")
    assert response.status_code == 200, response.text
    return sorted(json.loads(line)["device"] for line in response.text.splitlines())


def _act(collector: Harness, device: str, action: str, name: str | None = None) -> httpx.Response:
    """``action`` on ``device`` with the admin token; ``name``: the name to take (rename, unretire)."""
    return collector.admin.post(f"/admin/devices/{device}/{action}", json={"name": name} if name is not None else None)


def test_a_retired_devices_name_goes_to_its_replacement_and_its_results_stay_its_own(collector: Harness):
    campaign = collector.campaign(ARCHS[:3])
    old = collector.agent("rack-node-05", device="rack-node-05")
    first, second = _leased(old, 2)
    _push(old, [first])
    for agent, token in (("rack-node-05b", None), ("rack-node-05", ADMIN_TOKEN)):  # no token takes a live name
        taken = collector.enroll(agent, device="rack-node-05", token=token, fingerprint=REPLACEMENT)
        assert taken.status_code == 409 and "latbench devices retire rack-node-05" in taken.json()["message"]

    retired = _act(collector, "rack-node-05", "retire")
    assert retired.status_code == 200, retired.text
    stamp = f"rack-node-05@retired-{collector.clock.now:%Y-%m-%d}"
    assert retired.json() | {"retired_at": None} == {
        "device_id": retired.json()["device_id"], "name": stamp, "previous_name": "rack-node-05",
        "state": "retired", "retired_at": None, "released": 1, "predictor": None,
    }  # fmt: skip
    for path, body in (("/leases", {"max_jobs": 1}), ("/heartbeat", {"lease_ids": [second["lease_id"]]})):
        refused = old.post(path, json=body)
        assert refused.status_code == 403 and "retired" in refused.json()["message"], refused.text
    assert collector.admin.get("/admin/devices").json() == []
    [listed] = collector.admin.get("/admin/devices", params={"all": "true"}).json()
    assert (listed["name"], listed["state"], listed["former_name"], listed["online"]) == (
        stamp, "retired", "rack-node-05", False)  # fmt: skip
    again = collector.enroll("old-board-again", fingerprint=fingerprint("rack-node-05"))
    assert again.status_code == 409 and f"unretire {stamp}" in again.json()["message"]

    replacement = collector.enroll("rack-node-05", device="rack-node-05", token=ADMIN_TOKEN, fingerprint=REPLACEMENT)
    assert replacement.status_code == 201, replacement.text
    assert replacement.json()["device_name"] == "rack-node-05"
    assert replacement.json()["device_id"] != retired.json()["device_id"]
    new = collector.client(replacement.json()["agent_token"])
    _push(new, _leased(new, 3))
    assert _exported(collector, campaign) == ["rack-node-05"] * 3 + [stamp]
    status = collector.status(campaign)
    assert status["state"] == "done"  # the retired device's two jobs left never run and hold nothing open
    progress = {d["device"]: (d["done"], d["queued"]) for d in status["devices"]}
    assert progress == {"rack-node-05": (3, 0), stamp: (1, 2)}


def test_an_enrollment_token_enrolls_replacement_hardware_under_a_freed_name_only(collector: Harness):
    collector.agent("pi-1", device="bench")
    before = collector.dump()
    assert collector.enroll("pi-2", device="bench", fingerprint=REPLACEMENT).status_code == 409
    assert collector.dump() == before
    assert _act(collector, "bench", "retire").status_code == 200
    joined = collector.enroll("pi-2", device="bench", fingerprint=REPLACEMENT)
    assert joined.status_code == 201 and joined.json()["device_name"] == "bench", joined.text
    [live] = collector.admin.get("/admin/devices").json()
    assert (live["name"], live["agents"], live["fingerprint"]) == ("bench", ["pi-2"], REPLACEMENT)


def test_rename_carries_results_campaigns_and_the_predictor_file(db_url: str, artifact_cache: Path, tmp_path: Path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "pi-1.pt").write_bytes(b"a predictor")
    with Served(db_url, artifact_cache, Clock(), models_dir=models) as collector:
        campaign = collector.campaign(ARCHS[:3], devices=["pi-1"])
        agent = collector.agent("agent-1", device="pi-1")
        collector.agent("agent-2", device="pi-2")
        _push(agent, _leased(agent, 1))
        before = collector.dump()
        for name, status, code in (("pi-2", 409, "conflict"), ("no spaces", 422, "invalid"), ("", 422, "invalid")):
            refused = _act(collector, "pi-1", "rename", name=name)
            assert (refused.status_code, refused.json()["code"]) == (status, code), refused.text
        assert "taken by another device" in _act(collector, "pi-1", "rename", name="pi-2").json()["message"]
        assert _act(collector, "nobody", "rename", name="x").status_code == 404
        assert collector.dump() == before and (models / "pi-1.pt").is_file()

        renamed = _act(collector, "pi-1", "rename", name="rack-a")
        assert renamed.status_code == 200, renamed.text
        assert (renamed.json()["previous_name"], renamed.json()["predictor"]) == ("pi-1", "rack-a.pt")
        assert (models / "rack-a.pt").read_bytes() == b"a predictor" and not (models / "pi-1.pt").exists()
        _push(agent, _leased(agent, 2))  # the campaign named pi-1: it follows the device to its new name
        assert _exported(collector, campaign) == ["rack-a"] * 3
        assert [(d["device"], d["done"]) for d in collector.status(campaign)["devices"]] == [("rack-a", 3)]
        assert collector.status(campaign)["state"] == "done"
        assert sorted(d["name"] for d in collector.admin.get("/admin/devices").json()) == ["pi-2", "rack-a"]


@pytest.mark.slow  # the acquisition takes seconds
def test_an_adaptive_campaigns_predictor_follows_its_renamed_device_to_the_dashboard(
    db_url: str, artifact_cache: Path, tmp_path: Path
):
    models = tmp_path / "models"
    with Served(db_url, artifact_cache, Clock(), acquirer=PredictorAcquirer(), models_dir=models) as collector:
        campaign = collector.campaign(ARCHS, adaptive=PLAN)
        assert measure_until_stopped(collector, campaign, "steady")["model"] == "steady.pt"
        assert _act(collector, "steady", "rename", name="rack-a").json()["predictor"] == "rack-a.pt"
        [device] = collector.status(campaign)["adaptive_devices"]
        assert (device["device"], device["model"]) == ("rack-a", "rack-a.pt")
        assert sorted(p.name for p in models.iterdir()) == ["rack-a.pt"]
        shown = collector.admin.get(f"/admin/campaigns/{campaign}/devices/rack-a/predictions").json()
        assert (shown["model"], shown["available"], len(shown["points"])) == ("rack-a.pt", True, 8), shown


def test_a_predictor_file_in_the_way_refuses_the_rename_and_changes_nothing(
    db_url: str, artifact_cache: Path, tmp_path: Path
):
    models = tmp_path / "models"
    models.mkdir()
    for name in ("pi-1", "rack-a"):
        (models / f"{name}.pt").write_text(name)
    with Served(db_url, artifact_cache, Clock(), models_dir=models) as collector:
        collector.agent("agent-1", device="pi-1")
        before = collector.dump()
        refused = _act(collector, "pi-1", "rename", name="rack-a")
        assert refused.status_code == 409 and "rack-a.pt already" in refused.json()["message"]
        assert collector.dump() == before
        assert [(models / f"{n}.pt").read_text() for n in ("pi-1", "rack-a")] == ["pi-1", "rack-a"]


def test_unretire_gives_the_name_back_while_it_is_free(collector: Harness):
    agent = collector.agent("pi-1", device="bench")
    stamp = _act(collector, "bench", "retire").json()["name"]
    assert _act(collector, stamp, "retire").json()["name"] == stamp  # a no-op, as revoking twice
    back = _act(collector, stamp, "unretire")
    assert (back.status_code, back.json()["name"], back.json()["state"]) == (200, "bench", "live"), back.text
    assert agent.post("/leases", json={"max_jobs": 1}).status_code == 200  # its agents work again

    stamp = _act(collector, "bench", "retire").json()["name"]
    collector.agent("pi-2", device="bench", fingerprint=REPLACEMENT)
    taken = _act(collector, stamp, "unretire")
    assert taken.status_code == 409 and "--name" in taken.json()["message"]
    assert _act(collector, stamp, "rename", name="other").status_code == 409  # retired: unretire it first
    moved = _act(collector, stamp, "unretire", name="bench-old")
    assert (moved.status_code, moved.json()["name"]) == (200, "bench-old"), moved.text
    assert sorted(d["name"] for d in collector.admin.get("/admin/devices").json()) == ["bench", "bench-old"]


def test_retiring_a_device_twice_on_one_day_gives_each_retired_record_its_own_name(collector: Harness):
    long_name = "n" * 128
    collector.agent("pi-1", device=long_name)
    first = _act(collector, long_name, "retire").json()["name"]
    collector.agent("pi-2", device=long_name, fingerprint=REPLACEMENT)
    second = _act(collector, long_name, "retire").json()["name"]
    day = f"{collector.clock.now:%Y-%m-%d}"
    assert first.endswith(f"@retired-{day}") and second.endswith(f"@retired-{day}-2")
    assert len(first) == len(second) == 128
    assert [d["state"] for d in collector.admin.get("/admin/devices", params={"all": "true"}).json()] == ["retired"] * 2


def test_only_an_admin_token_renames_retires_or_unretires(collector: Harness):
    agent = collector.agent("pi-1", device="bench")
    enroller = collector.client(collector.enroll_token())
    before = collector.dump()
    for action, body in (("rename", {"name": "x"}), ("retire", None), ("unretire", {})):
        for client, status in ((agent, 403), (enroller, 403), (collector.client(), 401)):
            assert client.post(f"/admin/devices/bench/{action}", json=body).status_code == status, (action, status)
    assert collector.dump() == before


def test_each_action_leaves_one_audit_line_naming_the_admin_token(collector: Harness, caplog: pytest.LogCaptureFixture):
    collector.agent("pi-1", device="bench")
    with caplog.at_level(logging.INFO, logger="latbench.collectors.routes"):
        _act(collector, "bench", "rename", name="rack")
        stamp = _act(collector, "rack", "retire").json()["name"]
        _act(collector, stamp, "unretire")
    lines = [r.getMessage() for r in caplog.records if r.name == "latbench.collectors.routes" and "device" in r.msg]
    assert [line.split(" by admin token ")[0].split(") ")[1] for line in lines] == [
        "renamed 'rack'", f"retired as {stamp!r}", "unretired as 'rack'"]  # fmt: skip
    assert all("by admin token env-admin" in line for line in lines) and ADMIN_TOKEN not in str(lines)


def test_0011_keeps_the_devices_of_an_older_store_live(db_url: str):
    store = Store(db_url)
    try:
        upgrade(store.engine, "0010")
        with store.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO devices (id, name, fingerprint, machine, first_seen) VALUES "
                                 "('d1', 'dev', '0000000000000000', '{}', CURRENT_TIMESTAMP)"))  # fmt: skip
        upgrade(store.engine)
        with store.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT name, retired_at, former_name FROM devices")).all() == [
                ("dev", None, None)
            ]
    finally:
        store.close()


@pytest.mark.slow  # a real agent process
def test_a_running_agent_of_a_retired_device_stops_saying_so(served: Harness, tmp_path: Path):
    agent = Agent(served, served.enroll_token(), "pi-1", tmp_path / "agent", "--device-name", "bench", "--poll", "0.2")
    try:
        wait_for(lambda: served.admin.get("/admin/devices").json() != [], 60, "the agent to enroll")
        assert _act(served, "bench", "retire").status_code == 200
        assert agent.proc.wait(timeout=60) == 1
    finally:
        agent.stop()
    last = agent.log.read_text().strip().splitlines()[-1]
    assert "error:" in last and "this agent's device was retired" in last and "unretire bench@retired-" in last
