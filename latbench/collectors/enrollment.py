"""Devices and agents: enrollment with an enrollment token, and the device list the admin sees.

A device is a hardware configuration keyed by fingerprint, named and recorded (its machine) once, at its first
enrollment. A fingerprint hashes public facts, so it is a claim: each agent keeps the one it presented and the
machine it reported, joining a device never rewrites the device's record, and the device list names the agents
whose hardware differs from the record (``conflicts``) for an admin to check. Agent names
are unique, and a name belongs to its agent: an enrollment token enrolls new names only. Enrolling an existing
name again needs that agent's own token (a refresh: same agent, new token, its leases kept unless it moved to
another device) or an admin token (its leases go back to the queue, never to the caller); either way the old
tokens are revoked.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from latbench.agents.environment import MachineInfo
from latbench.collectors import leasing, tokens
from latbench.collectors.db import insert_one, new_id
from latbench.collectors.models import AgentRow, DeviceRow, TokenRow
from latbench.errors import Conflict, Forbidden, NotFound
from latbench.protocol import AgentRevoked, DeviceInfo, EnrollRequest, EnrollResponse

ONLINE_HEARTBEATS = 3
"""A device is online while one of its agents was heard from within this many heartbeat intervals."""


def heartbeat_interval_s(lease_ttl_s: float) -> float:
    """Three heartbeats per lease lifetime, so one lost heartbeat never costs a lease."""
    return lease_ttl_s / 3


def online_after(now: datetime, lease_ttl_s: float) -> datetime:
    """An agent last seen at or after this is online, and so is its device."""
    return now - timedelta(seconds=ONLINE_HEARTBEATS * heartbeat_interval_s(lease_ttl_s))


def enroll(
    session: Session, request: EnrollRequest, caller: TokenRow, now: datetime, lease_ttl_s: float
) -> EnrollResponse:
    """Enroll ``request.name`` for ``caller``, a live enrollment, agent or admin token (see the module's rules)."""
    existing = session.scalars(select(AgentRow).where(AgentRow.name == request.name).with_for_update()).first()
    _check_right(caller, request.name, existing)
    if caller.kind == "enroll":
        tokens.spend_enrollment(session, caller.id, request.name, now)
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
    offers = [offer.model_dump() for offer in request.runtimes]
    agent_row = {"id": new_id(), "name": request.name, "device_id": device.id, "machine": machine, "runtimes": offers,
                 "fingerprint": request.fingerprint}  # fmt: skip
    if existing is None:
        if not insert_one(session, AgentRow, {**agent_row, "enrolled_at": now, "last_seen": now}):
            raise Conflict(f"agent name {request.name!r} was enrolled just now by another request; enroll again")
        agent = session.scalars(select(AgentRow).where(AgentRow.name == request.name)).one()
    else:
        agent = existing
        if caller.kind == "admin" or agent.device_id != device.id:
            leasing.release_all(session, agent.id, now)
        tokens.revoke_agent_tokens(session, agent.id, now)
    agent.device_id, agent.machine, agent.runtimes, agent.fingerprint = device.id, machine, offers, request.fingerprint
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


def revoke(session: Session, name: str, now: datetime) -> AgentRevoked:
    """Revoke agent ``name``'s tokens and put its jobs back in the queue. The name stays taken: enrolling it again
    needs an admin token (an enrollment token cannot, and the agent's own token no longer works)."""
    agent = session.scalars(select(AgentRow).where(AgentRow.name == name).with_for_update()).first()
    if agent is None:
        raise NotFound(f"no agent {name!r}; `latbench devices` lists the agents")
    released = leasing.release_all(session, agent.id, now)
    tokens.revoke_agent_tokens(session, agent.id, now)
    return AgentRevoked(name=agent.name, agent_id=agent.id, released=released)


def _hardware(machine: dict[str, Any]) -> str | None:
    """The fingerprint of a reported machine's hardware facts (``None`` if they do not make a ``MachineInfo``)."""
    try:
        return MachineInfo(**machine).fingerprint()
    except TypeError:
        return None


def _check_right(caller: TokenRow, name: str, existing: AgentRow | None) -> None:
    """Refuse a caller that may not enroll ``name``: an agent token enrolls only its own agent, an enrollment
    token only names no agent holds yet."""
    if caller.kind == "agent" and (existing is None or existing.id != caller.agent_id):
        raise Forbidden(f"an agent token re-enrolls only its own agent, not {name!r}")
    if caller.kind == "enroll" and existing is not None:
        raise Conflict(
            f"agent name {name!r} is enrolled already: re-enroll it with its own agent token or an admin token, "
            "or enroll under another name"
        )


def devices(session: Session, now: datetime, lease_ttl_s: float) -> list[DeviceInfo]:
    online_since = online_after(now, lease_ttl_s)
    agents: dict[str, list[AgentRow]] = {}
    for agent in session.scalars(select(AgentRow).order_by(AgentRow.name)):
        agents.setdefault(agent.device_id, []).append(agent)
    current = tokens.agent_tokens(session)
    infos = []
    for device in session.scalars(select(DeviceRow).order_by(DeviceRow.name)):
        everyone = agents.get(device.id, [])
        own = [a for a in everyone if a.id in current and current[a.id].revoked_at is None]
        last_seen = max([device.first_seen, *(a.last_seen for a in everyone)])
        infos.append(
            DeviceInfo(
                device_id=device.id,
                name=device.name,
                fingerprint=device.fingerprint,
                machine=device.machine,
                runtimes=sorted({offer["name"] for a in own for offer in a.runtimes}),
                agents=[a.name for a in own],
                conflicts=[a.name for a in own if _hardware(a.machine) != _hardware(device.machine)],
                first_seen=device.first_seen,
                last_seen=last_seen,
                online=last_seen >= online_since,
                revoked_agents=[a.name for a in everyone if a not in own],
            )
        )
    return infos
