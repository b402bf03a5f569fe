"""Bearer tokens: admin, enrollment and per-agent, generated with ``secrets`` and stored as SHA-256 digests only.

A generated token reads ``lb_<kind>_<id>_<secret>``: the id finds its row, and the digest of the whole token is
compared in constant time. An admin token set through ``LATBENCH_ADMIN_TOKEN`` may be any string; one that does
not have that shape lives under the fixed id ``env-admin``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from latbench.collectors.models import Agent, Token
from latbench.errors import Forbidden, LatbenchError, Unauthenticated

Kind = Literal["admin", "enroll", "agent"]
ENV_ADMIN_ID = "env-admin"
MISSING = "missing bearer token: send 'Authorization: Bearer <token>'"
_SHAPE = re.compile(r"^lb_(?:admin|enroll|agent)_([0-9a-f]{16})_[A-Za-z0-9_-]{43}$")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_id(token: str) -> str:
    """The row id a presented token would be stored under."""
    match = _SHAPE.match(token)
    return match.group(1) if match else ENV_ADMIN_ID


def issue(session: Session, kind: Kind, now: datetime, name: str | None = None, agent_id: str | None = None) -> str:
    """Store a new token's digest and return the token itself, which exists nowhere else from now on."""
    new_id = secrets.token_hex(8)
    token = f"lb_{kind}_{new_id}_{secrets.token_urlsafe(32)}"
    session.add(Token(id=new_id, kind=kind, name=name, token_hash=digest(token), agent_id=agent_id, created_at=now))
    return token


def authenticate(session: Session, token: str | None, kind: Kind) -> Token:
    """The live token row of ``kind`` matching ``token``: 401 if unknown or revoked, 403 if of another kind."""
    if not token:
        raise Unauthenticated(MISSING)
    return _checked(session.get(Token, token_id(token)), token, kind)


def _checked(row: Token | None, token: str, kind: Kind) -> Token:
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.token_hash, digest(token)):
        raise Unauthenticated("unknown or revoked token")
    if row.kind != kind:
        raise Forbidden(f"this endpoint needs an {kind} token, not an {row.kind} token")
    return row


def authenticate_agent(session: Session, token: str) -> Agent:
    """The agent behind a live agent token, read with the token in one query (401 or 403 as ``authenticate``)."""
    if not token:
        raise Unauthenticated(MISSING)
    found = session.execute(
        select(Token, Agent).outerjoin(Agent, Agent.id == Token.agent_id).where(Token.id == token_id(token))
    ).first()
    row, agent = found if found is not None else (None, None)
    _checked(row, token, "agent")
    if agent is None:
        raise LatbenchError(f"agent token {row.id} has no agent")  # type: ignore[union-attr]
    return agent


def revoke_agent_tokens(session: Session, agent_id: str, now: datetime) -> None:
    session.execute(update(Token).where(Token.agent_id == agent_id, Token.revoked_at.is_(None)).values(revoked_at=now))


def bootstrap_admin(session: Session, configured: str | None, now: datetime) -> str | None:
    """Make sure an admin token exists; return it only when it was generated here and must be shown once.

    ``configured`` (the value of ``LATBENCH_ADMIN_TOKEN``) is stored, replacing an earlier configured one.
    """
    if configured:
        row = session.get(Token, token_id(configured))
        if row is None:
            session.add(Token(id=token_id(configured), kind="admin", name="LATBENCH_ADMIN_TOKEN",
                              token_hash=digest(configured), created_at=now))  # fmt: skip
        elif row.kind != "admin":
            raise LatbenchError("LATBENCH_ADMIN_TOKEN is set to a token of another kind; choose a new admin token")
        else:
            row.token_hash, row.revoked_at = digest(configured), None
        return None
    if session.scalar(select(Token.id).where(Token.kind == "admin", Token.revoked_at.is_(None)).limit(1)):
        return None
    return issue(session, "admin", now, name="first start")
