"""Admin endpoints that answer "who has access": the enrolled agents, live or revoked, with their tokens."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select
from sqlalchemy.orm import Session

from latbench.collectors import tokens
from latbench.collectors.http_semantics import JsonBodyRoute
from latbench.collectors.models import AgentRow, DeviceRow
from latbench.collectors.routes import AdminToken, Ctx
from latbench.protocol import API_PREFIX, AgentInfo

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
