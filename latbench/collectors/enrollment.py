"""Devices and agents: enrollment with an enrollment token, and the device list the admin sees.

A device is a hardware configuration keyed by fingerprint, named and recorded (its machine) once, at its first
enrollment. A fingerprint hashes public facts, so it is a claim: each agent keeps the one it presented and the
machine it reported, joining a device never rewrites the device's record, and the device list names the agents
whose hardware differs from the record (``conflicts``) for an admin to check. Agent names
are unique, and a name belongs to its agent: an enrollment token enrolls new names only. Enrolling an existing
name again needs that agent's own token (a refresh: same agent, new token, its leases kept unless it moved to
another device) or an admin token (its leases go back to the queue, never to the caller); either way the old
tokens are revoked.

An admin renames a device, or retires it (its hardware died or left): a retired device keeps its record and
results under a name of its own, ``NAME@retired-DATE``, its agents are refused, and its name is free for the
replacement hardware, which enrolls as a new device; unretiring gives the name back while it is free.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from latbench.agents.environment import MachineInfo
from latbench.collectors import leasing, tokens
from latbench.collectors.adaptive import predictor_file
from latbench.collectors.db import insert_one, is_unique_violation, new_id
from latbench.collectors.models import AdaptiveDeviceRow, AgentRow, CampaignRow, DeviceRow, TokenRow
from latbench.errors import Conflict, Forbidden, NotFound
from latbench.protocol import AgentRevoked, DeviceChanged, DeviceInfo, DeviceState, EnrollRequest, EnrollResponse

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
        raise Conflict(
            f"device name {name!r} is taken by another machine; enroll with another device name (for a machine "
            f"that replaces it, an admin frees the name first: latbench devices retire {name})"
        )
    if device.retired_at is not None:
        raise Conflict(
            f"this machine is device {device.name!r}, which an admin retired: its agents enroll again only once "
            f"it is unretired (latbench devices unretire {device.name})"
        )
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


def _alike(reported: dict[str, Any], recorded: dict[str, Any]) -> bool:
    """Whether two reported machines are the same hardware: the same fingerprint, or one of them read without
    psutil before latbench read cores and memory without it, and the other the same read fully
    (``MachineInfo.psutil_free_fingerprint``). Reports that make no ``MachineInfo`` are alike only each other."""
    a, b = _info(reported), _info(recorded)
    if a is None or b is None:
        return a is b
    return (
        a.fingerprint() in (b.fingerprint(), b.psutil_free_fingerprint())
        or a.psutil_free_fingerprint() == b.fingerprint()
    )


def _info(machine: dict[str, Any]) -> MachineInfo | None:
    try:
        return MachineInfo(**machine)
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


def devices(session: Session, now: datetime, lease_ttl_s: float, retired: bool = False) -> list[DeviceInfo]:
    """The live devices by name, and with ``retired`` the retired ones too."""
    online_since = online_after(now, lease_ttl_s)
    agents: dict[str, list[AgentRow]] = {}
    for agent in session.scalars(select(AgentRow).order_by(AgentRow.name)):
        agents.setdefault(agent.device_id, []).append(agent)
    current = tokens.agent_tokens(session)
    infos = []
    listed = select(DeviceRow).order_by(DeviceRow.name)
    for device in session.scalars(listed if retired else listed.where(DeviceRow.retired_at.is_(None))):
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
                conflicts=[a.name for a in own if not _alike(a.machine, device.machine)],
                first_seen=device.first_seen,
                last_seen=last_seen,
                online=device.retired_at is None and last_seen >= online_since,
                revoked_agents=[a.name for a in everyone if a not in own],
                state="live" if device.retired_at is None else "retired",
                retired_at=device.retired_at,
                former_name=device.former_name,
            )
        )
    return infos


RETIRED = "@retired-"
"""What a retired device's name carries after its former name: ``NAME@retired-YYYY-MM-DD``."""
MAX_NAME = 128
"""The longest device name (``protocol.Name``, ``DeviceRow.name``)."""


def rename(session: Session, name: str, new: str) -> DeviceChanged:
    """Rename live device ``name`` to ``new``, a free name: its results, and the campaigns that name it, follow
    (a campaign naming devices means those machines). Renaming to its own name is a no-op."""
    device = _device(session, name)
    if device.retired_at is not None:
        raise Conflict(f"device {name!r} is retired: unretire it under the name it should have "
                       f"(latbench devices unretire {name} --name {new})")  # fmt: skip
    if new != name:
        _take(session, device, new, "choose another name")
        for campaign_id, names in session.execute(select(CampaignRow.id, CampaignRow.devices)).all():
            if name in names:
                named = list(dict.fromkeys(new if n == name else n for n in names))
                session.execute(update(CampaignRow).where(CampaignRow.id == campaign_id).values(devices=named))
    return _changed(device, name)


def retire(session: Session, name: str, now: datetime) -> DeviceChanged:
    """Retire device ``name``: its agents are refused from now on (``tokens.authenticate_agent``), its leased jobs
    go back to its queue, where no one takes them, and it moves, results and all, to ``NAME@retired-DATE``, so
    that replacement hardware may enroll under ``name`` as a new device and datasets tell the two apart.
    Campaigns that name ``name`` keep it: their work goes to whichever device holds it. Retiring a retired
    device is a no-op."""
    device = _device(session, name)
    if device.retired_at is not None:
        return _changed(device, name)
    agents = session.scalars(select(AgentRow.id).where(AgentRow.device_id == device.id).order_by(AgentRow.id))
    released = sum(leasing.release_all(session, agent_id, now) for agent_id in agents.all())
    device.retired_at, device.former_name = now, name
    _take(session, device, _retired_name(session, name, now), "retire it again")
    return _changed(device, name, released)


def unretire(session: Session, name: str, new: str | None) -> DeviceChanged:
    """Bring retired device ``name`` back under ``new``, by default the name it had, which must be free (replacement
    hardware may hold it by now); its agents work again. Unretiring a live device is a no-op."""
    device = _device(session, name)
    if device.retired_at is None:
        return _changed(device, name)
    target = new or device.former_name or name
    device.retired_at, device.former_name = None, None
    _take(session, device, target, f"unretire it under another name (latbench devices unretire {name} --name NEW)")
    return _changed(device, name)


def _device(session: Session, name: str) -> DeviceRow:
    device = session.scalars(select(DeviceRow).where(DeviceRow.name == name).with_for_update()).first()
    if device is None:
        raise NotFound(f"no device {name!r}; `latbench devices --all` lists them, retired ones too")
    return device


def _take(session: Session, device: DeviceRow, name: str, otherwise: str) -> None:
    """Give ``device`` the free ``name``, and its adaptive campaigns' predictor file names with it."""
    holder = session.scalar(select(DeviceRow).where(DeviceRow.name == name, DeviceRow.id != device.id))
    if holder is not None:
        whose = "a retired device" if holder.retired_at is not None else "another device"
        raise Conflict(f"device name {name!r} is taken by {whose}; {otherwise}")
    previous, device.name = device.name, name
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent enrollment took the name between the check and the update
        if not is_unique_violation(exc):
            raise
        raise Conflict(f"device name {name!r} was taken just now; {otherwise}") from None
    session.execute(
        update(AdaptiveDeviceRow)
        .where(AdaptiveDeviceRow.device_id == device.id, AdaptiveDeviceRow.model == predictor_file(previous))
        .values(model=predictor_file(name))
    )


def _retired_name(session: Session, name: str, now: datetime) -> str:
    """``NAME@retired-DATE``, with ``-2``, ``-3``... where that is taken, cut to the longest name a device has."""
    n = 1
    while True:
        mark = f"{RETIRED}{now:%Y-%m-%d}" + (f"-{n}" if n > 1 else "")
        candidate = name[: MAX_NAME - len(mark)] + mark
        if session.scalar(select(DeviceRow.id).where(DeviceRow.name == candidate)) is None:
            return candidate
        n += 1


def _changed(device: DeviceRow, previous: str, released: int = 0) -> DeviceChanged:
    state: DeviceState = "live" if device.retired_at is None else "retired"
    return DeviceChanged(device_id=device.id, name=device.name, previous_name=previous, state=state,
                         retired_at=device.retired_at, released=released)  # fmt: skip
