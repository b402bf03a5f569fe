"""Bearer tokens: admin, enrollment, per-agent and metrics (``GET /metrics`` only), generated with ``secrets``
and stored as SHA-256 digests only.

A generated token reads ``lb_<kind>_<id>_<secret>``: the id finds its row, and the digest of the whole token is
compared in constant time. An admin token set through ``LATBENCH_ADMIN_TOKEN`` may be any string; one that does
not have that shape lives under the fixed id ``env-admin``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from datetime import datetime, timezone
from typing import Any, Literal, NamedTuple

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from latbench.collectors.db import UTCDateTime, opening_row, run
from latbench.collectors.models import AgentRow, DeviceRow, TokenRow
from latbench.errors import Conflict, Forbidden, InvalidRequest, LatbenchError, NotFound, Unauthenticated

Kind = Literal["admin", "enroll", "agent", "metrics"]
ENV_ADMIN_ID = "env-admin"
FIRST_START = "first start"
"""The name of the admin token a store gets when it starts without one."""
CONFIGURED = "LATBENCH_ADMIN_TOKEN"
"""The name of the admin token set through ``LATBENCH_ADMIN_TOKEN``."""
PREVIOUS = "previous LATBENCH_ADMIN_TOKEN"
"""The name of a replaced ``LATBENCH_ADMIN_TOKEN``'s revoked row, kept so that its value is refused."""
log = logging.getLogger(__name__)
MISSING = "missing bearer token: send 'Authorization: Bearer <token>'"
_SHAPE = re.compile(r"^lb_(?:admin|enroll|agent|metrics)_([0-9a-f]{16})_[A-Za-z0-9_-]{43}$")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_id(token: str) -> str:
    """The row id a presented token would be stored under."""
    match = _SHAPE.match(token)
    return match.group(1) if match else ENV_ADMIN_ID


def issue(session: Session, kind: Kind, now: datetime, name: str | None = None, agent_id: str | None = None,
          **limits: Any) -> str:  # fmt: skip
    """Store a new token's digest and return the token itself, which exists nowhere else from now on.

    ``limits`` are ``TokenRow`` columns: ``expires_at``, and for enrollment tokens ``max_uses`` and
    ``agent_names``. A token that would be born expired is refused: its creator surely meant something else."""
    expires_at = limits.get("expires_at")
    if expires_at is not None and expires_at <= now:
        raise InvalidRequest(f"expires_at {expires_at.isoformat()} is not in the future (now {now.isoformat()})")
    new_id = secrets.token_hex(8)
    token = f"lb_{kind}_{new_id}_{secrets.token_urlsafe(32)}"
    session.add(TokenRow(id=new_id, kind=kind, name=name, token_hash=digest(token), agent_id=agent_id, created_at=now,
                         uses=0, **limits))  # fmt: skip
    return token


def authenticate(session: Session, token: str | None, kind: Kind | tuple[Kind, ...], now: datetime) -> TokenRow:
    """The live token row of ``kind`` matching ``token``: 401 if unknown, revoked or expired, 403 if of another
    kind."""
    if not token:
        raise Unauthenticated(MISSING)
    row = _checked(session.get(TokenRow, token_id(token)), token, kind)
    if row.expires_at is not None and row.expires_at <= now:
        raise Unauthenticated("expired token")
    return row


def spend_enrollment(session: Session, token_id: str, agent_name: str, now: datetime) -> None:
    """Count one enrollment of ``agent_name`` against the enrollment token's limits (its row locked, so
    concurrent enrollments never exceed ``max_uses``); 401 or 403 if they do not allow it."""
    row = session.get(TokenRow, token_id, with_for_update=True, populate_existing=True)
    if row is None or row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        raise Unauthenticated("unknown, revoked or expired token")
    if row.agent_names is not None and agent_name not in row.agent_names:
        raise Forbidden(f"this enrollment token does not enroll agent {agent_name!r}")
    if row.max_uses is not None and row.uses >= row.max_uses:
        raise Forbidden(f"this enrollment token is used up ({row.max_uses} enrollments)")
    row.uses += 1


def _checked(row: Any, token: str, kind: Kind | tuple[Kind, ...]) -> Any:
    """``row`` (a ``TokenRow`` or a row with its columns) if it is a live token of ``kind`` matching ``token``."""
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.token_hash, digest(token)):
        raise Unauthenticated("unknown or revoked token")
    kinds = (kind,) if isinstance(kind, str) else kind
    if row.kind not in kinds:
        raise Forbidden(f"this endpoint needs {_a(' or '.join(kinds))} token, not {_a(row.kind)} token")
    return row


def _a(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


class AgentRef(NamedTuple):
    """What the agent endpoints need of the requesting agent, read with its token."""

    id: str
    device_id: str
    device_name: str
    runtimes: list[dict[str, Any]]


_tokens, _agents, _devices = TokenRow.__table__, AgentRow.__table__, DeviceRow.__table__
_AGENT_COLUMNS = (_tokens.c.id, _tokens.c.kind, _tokens.c.token_hash, _tokens.c.revoked_at,
                  _agents.c.id.label("agent_id"), _agents.c.device_id, _devices.c.name.label("device_name"),
                  _agents.c.runtimes, _devices.c.retired_at)  # fmt: skip
_AGENT_SEEN = (
    update(_agents)
    .where(_agents.c.id == _tokens.c.agent_id, _devices.c.id == _agents.c.device_id, _tokens.c.id == bindparam("tid"))
    .values(last_seen=bindparam("now", type_=UTCDateTime()))
    .returning(*_AGENT_COLUMNS)
)
"""PostgreSQL: read a token with its agent and device, and mark the agent seen, in one statement."""
_AGENT_BY_TOKEN = (
    select(*_AGENT_COLUMNS)
    .select_from(_tokens.join(_agents, _agents.c.id == _tokens.c.agent_id).join(_devices))
    .where(_tokens.c.id == bindparam("tid"))
)
_TOUCH_AGENT = (
    update(_agents).where(_agents.c.id == bindparam("aid")).values(last_seen=bindparam("now", type_=UTCDateTime()))
)


def authenticate_agent(session: Session, token: str, now: datetime) -> AgentRef:
    """The agent behind a live agent token (401 or 403 as ``authenticate``; 403 too for an agent of a retired
    device), marked as seen at ``now``.

    On PostgreSQL one ``UPDATE ... RETURNING`` both reads the token with its agent and sets ``last_seen``, sent
    with the transaction's ``BEGIN``, so the agent's row is the first row every agent request locks (which also
    keeps lock order deadlock-free);
    SQLite, where a round trip costs nothing and RETURNING cannot name other tables, reads and then updates.
    A refused token leaves nothing behind: the caller's transaction rolls back.
    """
    if not token:
        raise Unauthenticated(MISSING)
    if session.get_bind().dialect.name == "postgresql":
        row = opening_row(session, _AGENT_SEEN, {"tid": token_id(token), "now": now})
    else:
        row = run(session, _AGENT_BY_TOKEN, {"tid": token_id(token)}).first()
        if row is not None:
            run(session, _TOUCH_AGENT, {"aid": row.agent_id, "now": now})
    if row is None:
        authenticate(session, token, "agent", now)  # raises 401 or 403
        raise LatbenchError(f"agent token {token_id(token)} has no agent")
    _checked(row, token, "agent")
    if row.retired_at is not None:
        raise Forbidden(f"this agent's device was retired (as {row.device_name!r}): it gets no more work; an admin "
                        f"unretires it with latbench devices unretire {row.device_name}")  # fmt: skip
    return AgentRef(row.agent_id, row.device_id, row.device_name, row.runtimes)


def agent_tokens(session: Session) -> dict[str, TokenRow]:
    """Each agent's current token by agent id: its live one (an agent holds one at most), else its last revoked
    one, which makes the agent revoked."""
    current: dict[str, TokenRow] = {}
    for row in session.scalars(select(TokenRow).where(TokenRow.kind == "agent").order_by(TokenRow.created_at)):
        held = current.get(row.agent_id or "")
        if row.agent_id and (held is None or held.revoked_at is not None):
            current[row.agent_id] = row
    return current


def list_kind(session: Session, kind: Kind) -> list[TokenRow]:
    """Every token of ``kind``, oldest first, revoked ones included."""
    return list(
        session.scalars(select(TokenRow).where(TokenRow.kind == kind).order_by(TokenRow.created_at, TokenRow.id))
    )


def revoke(session: Session, kind: Kind, row_id: str, now: datetime) -> TokenRow:
    """Revoke the token ``row_id`` of ``kind`` (a no-op if it is revoked already) and return it.

    Agents enrolled with an enrollment token keep their own tokens: revoking stops new enrollments only. The
    last live admin token cannot be revoked, which would lock every admin out.
    """
    row = session.get(TokenRow, row_id, with_for_update=True)
    if row is None or row.kind != kind:
        listing = "latbench token list" + {"admin": " --admin", "metrics": " --kind metrics"}.get(kind, "")
        raise NotFound(f"no {_WORDS[kind]} token {row_id!r}; `{listing}` shows them")
    if row.revoked_at is None and kind == "admin" and _live_admins(session, now) == [row.id]:
        raise Conflict("this is the last live admin token: create another (`latbench token create --admin`) first")
    if row.revoked_at is None:
        row.revoked_at = now
    return row


_WORDS = {"admin": "admin", "enroll": "enrollment", "agent": "agent", "metrics": "metrics"}


def _live_admins(session: Session, now: datetime) -> list[str]:
    live = (TokenRow.kind == "admin", TokenRow.revoked_at.is_(None))
    unexpired = (TokenRow.expires_at.is_(None)) | (TokenRow.expires_at > now)
    return list(session.scalars(select(TokenRow.id).where(*live, unexpired)))


MIN_ADMIN_CHARS = 32
"""The shortest admin token ``LATBENCH_ADMIN_TOKEN`` may set; generated tokens have 43 random characters."""


def check_strength(token: str) -> None:
    """Refuse an admin token that could be guessed: short, or made of few distinct characters."""
    if len(token) < MIN_ADMIN_CHARS or len(set(token)) < 10:
        raise LatbenchError(
            f"LATBENCH_ADMIN_TOKEN is too weak: use at least {MIN_ADMIN_CHARS} random characters, for example "
            "from: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )


def revoke_agent_tokens(session: Session, agent_id: str, now: datetime) -> None:
    session.execute(
        update(TokenRow).where(TokenRow.agent_id == agent_id, TokenRow.revoked_at.is_(None)).values(revoked_at=now)
    )


def bootstrap_admin(session: Session, configured: str | None, now: datetime) -> str | None:
    """Make sure an admin token exists; return it only when it was generated here and must be shown once.

    ``configured`` (the value of ``LATBENCH_ADMIN_TOKEN``) is stored as ``configure`` says; without it, a store
    with no live admin token gets one generated.
    """
    if configured:
        configure(session, configured, now)
        return None
    if session.scalar(select(TokenRow.id).where(TokenRow.kind == "admin", TokenRow.revoked_at.is_(None)).limit(1)):
        return None
    return issue(session, "admin", now, name=FIRST_START)


def configure(session: Session, configured: str, now: datetime) -> None:
    """Store ``configured`` as a live admin token; refuse one that was revoked or has expired, which must not
    come back because a service restarted with an old environment file.

    A value new to the store is a rotation, logged: it revokes the previous configured token and the first-start
    token, and the previous value's digest stays behind as a revoked row (``PREVIOUS``), so that a replica still
    set to it refuses to start instead of locking every admin out by rotating back. A live admin token made with
    ``latbench token create --admin`` may be configured too: it keeps its row, name and expiry.
    """
    check_strength(configured)
    hashed, row_id = digest(configured), token_id(configured)
    for seen in session.scalars(select(TokenRow).where(TokenRow.kind == "admin", TokenRow.token_hash == hashed)):
        if seen.revoked_at is not None:
            raise LatbenchError(f"LATBENCH_ADMIN_TOKEN was revoked at {_utc(seen.revoked_at)}; {_SET_NEW}")
        if seen.expires_at is not None and seen.expires_at <= now:
            raise LatbenchError(f"LATBENCH_ADMIN_TOKEN expired at {_utc(seen.expires_at)}; {_SET_NEW}")
    row = session.get(TokenRow, row_id, with_for_update=True)
    replaced: list[str] = []
    if row is None:
        session.add(TokenRow(id=row_id, kind="admin", name=CONFIGURED, token_hash=hashed, created_at=now))
    elif row.kind != "admin":
        raise LatbenchError("LATBENCH_ADMIN_TOKEN is set to a token of another kind; choose a new admin token")
    elif row.token_hash != hashed:
        if row.id != ENV_ADMIN_ID:
            raise LatbenchError(f"LATBENCH_ADMIN_TOKEN has the id of admin token {row.id} but not its secret")
        replaced.append(_keep_revoked(session, row, now))
        row.token_hash, row.revoked_at, row.created_at, row.expires_at = hashed, None, now, None
    previous = (TokenRow.kind == "admin", TokenRow.revoked_at.is_(None), TokenRow.id != row_id,
                TokenRow.name.in_((CONFIGURED, FIRST_START)))  # fmt: skip
    for old in session.scalars(select(TokenRow).where(*previous)):
        old.revoked_at = now
        replaced.append(old.id)
    if replaced:
        log.warning("LATBENCH_ADMIN_TOKEN is new to this store: it replaces admin token %s, revoked; a replica "
                    "started with a previous value will refuse to start", ", ".join(replaced))  # fmt: skip


_SET_NEW = "set a new LATBENCH_ADMIN_TOKEN (the same on every replica)"


def _utc(moment: datetime) -> str:
    """``moment`` in UTC; SQLite gives back the UTC times it was given without their zone."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return aware.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _keep_revoked(session: Session, row: TokenRow, now: datetime) -> str:
    """Copy the configured token ``row`` (about to hold a new value) to a revoked row of its own; its id."""
    kept = TokenRow(id=f"env-{secrets.token_hex(8)}", kind="admin", name=PREVIOUS, token_hash=row.token_hash,
                    created_at=row.created_at, revoked_at=row.revoked_at or now, expires_at=row.expires_at)  # fmt: skip
    session.add(kept)
    return kept.id
