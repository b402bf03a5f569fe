"""Admin endpoints for the fleet: who has access (the enrolled agents, live or revoked, with their tokens), and a
device's lifecycle (rename, retire, unretire), each action one line of the audit trail (``routes.log``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import APIRouter
from sqlalchemy import select
from sqlalchemy.orm import Session

from latbench.collectors import enrollment, tokens
from latbench.collectors.adaptive import predictor_file
from latbench.collectors.context import Collector
from latbench.collectors.http_semantics import JsonBodyRoute
from latbench.collectors.models import AgentRow, DeviceRow
from latbench.collectors.routes import AdminToken, Ctx, log
from latbench.errors import Conflict
from latbench.protocol import API_PREFIX, AgentInfo, DeviceChanged, DeviceRename, DeviceUnretire

router = APIRouter(prefix=API_PREFIX, route_class=JsonBodyRoute)


def agents(session: Session) -> list[AgentInfo]:
    """Every agent ever enrolled, by name: an agent without a live token was revoked (its name stays taken)."""
    current = tokens.agent_tokens(session)
    query = select(AgentRow, DeviceRow.name).join(DeviceRow, DeviceRow.id == AgentRow.device_id).order_by(AgentRow.name)
    infos = []
    for agent, device in session.execute(query):
        token = current.get(agent.id)
        revoked_at = token.revoked_at if token is not None else None
        infos.append(
            AgentInfo(
                name=agent.name,
                agent_id=agent.id,
                device=device,
                state="live" if token is not None and revoked_at is None else "revoked",
                enrolled_at=agent.enrolled_at,
                last_seen=agent.last_seen,
                token_id=token.id if token is not None else None,
                token_created_at=token.created_at if token is not None else None,
                revoked_at=revoked_at,
            )
        )
    return infos


@router.get("/admin/agents")
def list_agents(_: AdminToken, c: Ctx) -> list[AgentInfo]:
    with c.store.read() as session:
        return agents(session)


@router.post("/admin/devices/{name}/rename")
def rename_device(name: str, body: DeviceRename, admin: AdminToken, c: Ctx) -> DeviceChanged:
    """Rename a live device: its results, the campaigns that name it and its predictor file take the new name
    (409 if it is taken, or the device is retired)."""
    changed = _change(c, lambda session: enrollment.rename(session, name, body.name))
    log.info("device %r (%s) renamed %r by admin token %s", changed.previous_name, changed.device_id, changed.name,
             admin.id)  # fmt: skip
    return changed


@router.post("/admin/devices/{name}/retire")
def retire_device(name: str, admin: AdminToken, c: Ctx) -> DeviceChanged:
    """Retire a device: it moves to ``NAME@retired-DATE`` with its results, its agents are refused, its leased
    jobs go back to the queue, and ``name`` is free for replacement hardware. Retiring twice is a no-op."""
    changed = _change(c, lambda session: enrollment.retire(session, name, c.clock()))
    log.info("device %r (%s) retired as %r by admin token %s; %d leased job(s) back in the queue",
             changed.previous_name, changed.device_id, changed.name, admin.id, changed.released)  # fmt: skip
    return changed


@router.post("/admin/devices/{name}/unretire")
def unretire_device(name: str, admin: AdminToken, c: Ctx, body: DeviceUnretire | None = None) -> DeviceChanged:
    """Bring a retired device back under the name it had (or ``body.name``; no body: the name it had); 409 while
    that name is taken. Unretiring a live device is a no-op."""
    changed = _change(c, lambda session: enrollment.unretire(session, name, body.name if body else None))
    log.info("device %r (%s) unretired as %r by admin token %s", changed.previous_name, changed.device_id,
             changed.name, admin.id)  # fmt: skip
    return changed


def _change(c: Collector, change: Callable[[Session], DeviceChanged]) -> DeviceChanged:
    """``change`` in one transaction; the device's predictor file follows its name, moved just before the commit
    and moved back if the commit fails, so the file and the store never disagree."""
    moved: tuple[Path, Path] | None = None
    try:
        with c.store.write() as session:
            changed = change(session)
            moved = _move_predictor(c.models_dir, changed.previous_name, changed.name)
    except BaseException:
        if moved is not None:
            moved[1].replace(moved[0])
        raise
    return changed.model_copy(update={"predictor": moved[1].name if moved else None})


def _move_predictor(models_dir: Path | None, old: str, new: str) -> tuple[Path, Path] | None:
    """Move ``<old>.pt`` among the collector's models to ``<new>.pt``; the two paths, or ``None`` if there is none
    to move. A file already at ``<new>.pt`` (placed by hand for a name no device had) is a 409."""
    source = models_dir / predictor_file(old) if models_dir is not None else None
    if source is None or old == new or not source.is_file():
        return None
    target = source.with_name(predictor_file(new))
    if target.exists():
        raise Conflict(f"the collector's models hold {target.name} already, and {source.name} would take its place: "
                       "move one of them away first")  # fmt: skip
    source.replace(target)
    return source, target
