"""Devices and agents: enrollment with an enrollment token, and the device list the admin sees.

A device is a hardware configuration keyed by fingerprint and named once, at its first enrollment. Agent names
are unique; enrolling an existing name again moves that agent to the enrolling machine and gives it a new token,
revoking the old one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from latbench.collectors import tokens
from latbench.collectors.db import insert_one, new_id
from latbench.collectors.models import AgentRow, DeviceRow
from latbench.errors import Conflict
from latbench.protocol import DeviceInfo, EnrollRequest, EnrollResponse

ONLINE_HEARTBEATS = 3
"""A device is online while one of its agents was heard from within this many heartbeat intervals."""


def heartbeat_interval_s(lease_ttl_s: float) -> float:
    """Three heartbeats per lease lifetime, so one lost heartbeat never costs a lease."""
    return lease_ttl_s / 3


def enroll(session: Session, request: EnrollRequest, now: datetime, lease_ttl_s: float) -> EnrollResponse:
    machine = request.machine.model_dump()
    name = request.device_name or request.name
    device_row = {
        "id": new_id(),
        "name": name,
        "fingerprint": request.fingerprint,
        "machine": machine,
        "first_seen": now,
    }
    insert_one(session, DeviceRow, device_row)
    device = session.scalar(select(DeviceRow).where(DeviceRow.fingerprint == request.fingerprint))
    if device is None:
        raise Conflict(f"device name {name!r} is taken by another machine; enroll with another device name")
    device.machine = machine
    offers = [offer.model_dump() for offer in request.runtimes]
    agent_row = {"id": new_id(), "name": request.name, "device_id": device.id, "machine": machine, "runtimes": offers}
    insert_one(session, AgentRow, {**agent_row, "enrolled_at": now, "last_seen": now})
    agent = session.scalars(select(AgentRow).where(AgentRow.name == request.name).with_for_update()).one()
    tokens.revoke_agent_tokens(session, agent.id, now)
    agent.device_id, agent.machine, agent.runtimes = device.id, machine, offers
    agent.enrolled_at = agent.last_seen = now
    token = tokens.issue(session, "agent", now, name=agent.name, agent_id=agent.id)
    return EnrollResponse(
        agent_id=agent.id,
        agent_token=token,
        device_id=device.id,
        device_name=device.name,
        heartbeat_interval_s=heartbeat_interval_s(lease_ttl_s),
        lease_ttl_s=lease_ttl_s,
    )


def devices(session: Session, now: datetime, lease_ttl_s: float) -> list[DeviceInfo]:
    online_after = now - timedelta(seconds=ONLINE_HEARTBEATS * heartbeat_interval_s(lease_ttl_s))
    agents: dict[str, list[AgentRow]] = {}
    for agent in session.scalars(select(AgentRow).order_by(AgentRow.name)):
        agents.setdefault(agent.device_id, []).append(agent)
    infos = []
    for device in session.scalars(select(DeviceRow).order_by(DeviceRow.name)):
        own = agents.get(device.id, [])
        last_seen = max([device.first_seen, *(a.last_seen for a in own)])
        infos.append(
            DeviceInfo(
                device_id=device.id,
                name=device.name,
                fingerprint=device.fingerprint,
                machine=device.machine,
                runtimes=sorted({offer["name"] for a in own for offer in a.runtimes}),
                agents=[a.name for a in own],
                first_seen=device.first_seen,
                last_seen=last_seen,
                online=last_seen >= online_after,
            )
        )
    return infos
