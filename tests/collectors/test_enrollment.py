"""Enrollment and tokens: agents join with an enrollment token and get their own, which is all the store keeps."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
import sqlalchemy as sa

from latbench.collectors.models import AgentRow, TokenRow
from tests.support.served import ADMIN_TOKEN, ARCHS, MACHINE, Harness, fingerprint


def test_enrollment_names_the_device_and_returns_an_agent_token_and_the_lease_timing(collector: Harness):
    response = collector.enroll("pi-1", device="rpi4")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["device_name"] == "rpi4"
    assert body["agent_token"].startswith("lb_agent_")
    assert body["lease_ttl_s"] == 30.0 and body["heartbeat_interval_s"] == 10.0
    assert collector.client(body["agent_token"]).post("/heartbeat", json={}).status_code == 200


def test_a_device_is_keyed_by_fingerprint_and_named_once(collector: Harness):
    first = collector.enroll("a1", device="bench").json()
    second = collector.enroll("a2", fingerprint=fingerprint("bench")).json()
    assert second["device_id"] == first["device_id"] and second["device_name"] == "bench"
    third = collector.enroll("a3").json()
    assert third["device_name"] == "a3" and third["device_id"] != first["device_id"]


def test_a_device_name_used_by_another_machine_is_a_conflict(collector: Harness):
    collector.enroll("a1", device="bench")
    before = collector.dump()
    response = collector.enroll("a2", device_name="bench", fingerprint=fingerprint("other"))
    assert response.status_code == 409 and response.json()["code"] == "conflict"
    assert collector.dump() == before


def leased(agent) -> list[str]:
    response = agent.post("/leases", json={"max_jobs": 2})
    assert response.status_code == 200, response.text
    return [job["lease_id"] for job in response.json()["jobs"]]


def test_an_enrollment_token_cannot_take_over_an_enrolled_agent_or_its_leases(collector: Harness):
    collector.campaign(ARCHS[:2])
    owner = collector.agent("pi-1")
    leases = leased(owner)
    before = collector.dump()
    response = collector.enroll("pi-1", device="attacker")
    assert response.status_code == 409 and "enrolled already" in response.json()["message"]
    assert collector.dump() == before
    assert owner.post("/heartbeat", json={"lease_ids": leases}).json()["renewed"] == leases


def test_an_agent_re_enrolls_itself_with_its_own_token_and_keeps_its_leases(collector: Harness):
    collector.campaign(ARCHS[:2])
    response = collector.enroll("pi-1")
    old_token, agent_id = response.json()["agent_token"], response.json()["agent_id"]
    leases = leased(collector.client(old_token))
    again = collector.enroll("pi-1", token=old_token)
    assert again.status_code == 201, again.text
    assert again.json()["agent_id"] == agent_id
    new = collector.client(again.json()["agent_token"])
    assert collector.client(old_token).post("/heartbeat", json={}).status_code == 401
    assert new.post("/heartbeat", json={"lease_ids": leases}).json()["renewed"] == leases
    devices = collector.admin.get("/admin/devices").json()
    assert [d["agents"] for d in devices] == [["pi-1"]]


def test_an_agent_token_enrolls_no_other_agent(collector: Harness):
    first = collector.enroll("pi-1").json()["agent_token"]
    collector.agent("pi-2")
    before = collector.dump()
    for name in ("pi-2", "pi-3"):
        response = collector.enroll(name, token=first)
        assert response.status_code == 403 and "only its own agent" in response.json()["message"]
    assert collector.dump() == before


def test_an_admin_re_enrolls_a_name_and_its_leases_go_back_to_the_queue(collector: Harness):
    campaign = collector.campaign(ARCHS[:2])
    old = collector.agent("pi-1")
    leases = leased(old)
    response = collector.enroll("pi-1", device="new-box", token=ADMIN_TOKEN)
    assert response.status_code == 201, response.text
    assert old.post("/heartbeat", json={}).status_code == 401
    new = collector.client(response.json()["agent_token"])
    assert new.post("/heartbeat", json={"lease_ids": leases}).json()["lost"] == leases
    [progress] = collector.status(campaign)["devices"]
    assert (progress["device"], progress["queued"], progress["leased"]) == ("pi-1", 2, 0)


def test_enrollment_tokens_are_reusable(collector: Harness):
    assert collector.enroll("a1").status_code == 201
    assert collector.enroll("a2").status_code == 201


def test_the_store_keeps_only_digests_of_tokens(collector: Harness):
    agent_token = collector.enroll("pi-1").json()["agent_token"]
    enroll_token = collector.enroll_token()
    with collector.store.engine.connect() as conn:
        rows = conn.execute(sa.select(TokenRow.kind, TokenRow.token_hash)).all()
        every_value = repr(collector.dump())
    digests = {hashlib.sha256(t.encode()).hexdigest() for t in (agent_token, enroll_token, ADMIN_TOKEN)}
    assert {kind for kind, _ in rows} == {"admin", "enroll", "agent"}
    assert {digest for _, digest in rows} == digests
    for token in (agent_token, enroll_token, ADMIN_TOKEN):
        assert token not in every_value


def test_each_endpoint_takes_only_its_kind_of_token(collector: Harness):
    agent = collector.agent("pi-1")
    enroller = collector.client(collector.enroll_token())
    assert agent.get("/admin/devices").status_code == 403
    assert enroller.post("/leases", json={}).status_code == 403
    assert collector.admin.post("/leases", json={}).status_code == 403
    response = agent.post("/admin/enrollment-tokens", json={})
    assert response.status_code == 403
    assert response.json()["message"] == "this endpoint needs an admin token, not an agent token"


def test_missing_malformed_and_unknown_tokens_are_unauthenticated(collector: Harness):
    unknown = "lb_agent_0123456789abcdef_" + "x" * 43
    for client in (collector.client(), collector.client("nonsense"), collector.client(unknown)):
        response = client.post("/leases", json={})
        assert response.status_code == 401
        assert response.json()["code"] == "unauthenticated"
    basic = collector.client()
    assert basic.get("/admin/devices", headers={"Authorization": "Basic YTpi"}).status_code == 401


def test_devices_are_online_while_their_agents_heartbeat(collector: Harness):
    agent = collector.agent("pi-1", device="rpi4")
    [device] = collector.admin.get("/admin/devices").json()
    assert device["name"] == "rpi4" and device["online"] and device["runtimes"] == ["onnxruntime"]
    assert device["machine"]["hostname"] == "bench-1" and device["fingerprint"] == fingerprint("rpi4")
    collector.clock.advance(31)
    assert not collector.admin.get("/admin/devices").json()[0]["online"]
    agent.post("/heartbeat", json={})
    assert collector.admin.get("/admin/devices").json()[0]["online"]


def limited_token(collector: Harness, **limits) -> str:
    response = collector.admin.post("/admin/enrollment-tokens", json={"name": "limited", **limits})
    assert response.status_code == 201, response.text
    return response.json()["token"]


def test_an_enrollment_token_enrolls_at_most_max_uses_agents(collector: Harness):
    token = limited_token(collector, max_uses=1)
    assert collector.enroll("a1", token=token).status_code == 201
    before = collector.dump()
    response = collector.enroll("a2", token=token)
    assert response.status_code == 403 and "used up" in response.json()["message"]
    assert collector.dump() == before
    [info] = [t for t in collector.admin.get("/admin/enrollment-tokens").json() if t["name"] == "limited"]
    assert info["uses"] == 1 and info["max_uses"] == 1


def test_an_enrollment_token_stops_working_when_it_expires(collector: Harness):
    expiry = collector.clock.now + timedelta(seconds=60)
    token = limited_token(collector, expires_at=expiry.isoformat())
    assert collector.enroll("a1", token=token).status_code == 201
    collector.clock.advance(61)
    response = collector.enroll("a2", token=token)
    assert response.status_code == 401 and response.json()["message"] == "expired token"


def test_an_enrollment_token_enrolls_only_the_agent_names_it_allows(collector: Harness):
    token = limited_token(collector, agent_names=["pi-1"])
    response = collector.enroll("pi-2", token=token)
    assert response.status_code == 403 and "does not enroll agent 'pi-2'" in response.json()["message"]
    assert collector.enroll("pi-1", token=token).status_code == 201


@pytest.mark.slow
def test_an_admin_revokes_an_agent_whose_jobs_go_back_and_whose_name_stays_taken(collector: Harness):
    campaign = collector.campaign(ARCHS[:2])
    response = collector.enroll("pi-1")
    agent_token, agent_id = response.json()["agent_token"], response.json()["agent_id"]
    agent = collector.client(agent_token)
    leased(agent)
    revoked = collector.admin.post("/admin/agents/pi-1/revoke")
    assert revoked.status_code == 200 and revoked.json() == {"name": "pi-1", "agent_id": agent_id, "released": 2}
    assert agent.post("/heartbeat", json={}).status_code == 401
    assert collector.enroll("pi-1", token=agent_token).status_code == 401
    assert collector.enroll("pi-1").status_code == 409
    assert collector.status(campaign)["devices"][0]["queued"] == 2
    assert collector.admin.post("/admin/agents/pi-1/revoke").json()["released"] == 0
    assert collector.admin.post("/admin/agents/nobody/revoke").status_code == 404
    assert collector.agent("pi-2").post("/admin/agents/pi-1/revoke").status_code == 403


@pytest.mark.slow
def test_joining_a_device_by_its_fingerprint_keeps_its_record_and_shows_the_conflict(collector: Harness):
    collector.agent("pi-1", device="rpi4")
    impostor = {**MACHINE, "cpu_model": "Other CPU", "hostname": "elsewhere"}
    response = collector.enroll("pi-2", fingerprint=fingerprint("rpi4"), machine=impostor)
    assert response.status_code == 201 and response.json()["device_name"] == "rpi4"
    [device] = collector.admin.get("/admin/devices").json()
    assert device["machine"] == MACHINE and device["agents"] == ["pi-1", "pi-2"]
    assert device["conflicts"] == ["pi-2"]
    with collector.store.engine.connect() as conn:
        claims = dict(conn.execute(sa.select(AgentRow.name, AgentRow.fingerprint)).all())
    assert claims == {"pi-1": fingerprint("rpi4"), "pi-2": fingerprint("rpi4")}
