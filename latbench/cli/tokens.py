"""``latbench token``: enrollment tokens for agents, admin tokens and metrics tokens (for a Prometheus server),
over HTTP; a token is printed once only.

Listings say whether each token still works (``status``: live, expired, used up or revoked), judged by this
machine's clock against the expiry and use count the collector reports.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal, cast

import typer

from latbench.cli import options as opt
from latbench.cli.console import Table, aware, err, minute, out
from latbench.client import CollectorClient, NamedKind
from latbench.protocol import EnrollmentTokenInfo

token_app = typer.Typer(help="Enrollment tokens for agents; admin and metrics tokens.", no_args_is_help=True)
KINDS = ("enroll", "admin", "metrics")
WORDS = {"enroll": "enrollment", "admin": "admin", "metrics": "metrics"}


KindOption = Annotated[
    str,
    typer.Option(
        "--kind", callback=opt.one_of(KINDS), help="enroll (for agents), admin, or metrics (reads /metrics only)."
    ),
]
AdminFlag = Annotated[bool, typer.Option("--admin", help="Short for --kind admin.")]


def _kind(kind: str, admin: bool) -> str:
    """The kind ``--kind`` and ``--admin`` ask for together; a usage error if they contradict each other."""
    if admin and kind not in ("enroll", "admin"):
        raise typer.BadParameter(f"--admin is --kind admin, not --kind {kind}: give one of them")
    return "admin" if admin else kind


MAX_EXPIRY_H = 100 * 366 * 24
"""The longest ``--expires-in``: far enough for any real token, short of the dates a datetime cannot hold."""


@token_app.command("create")
def token_create(
    name: str | None = typer.Option(None, "--name", help="A label for the token."),
    expires_in_h: float | None = typer.Option(
        None, "--expires-in", min=0.001, max=MAX_EXPIRY_H, help="Hours until it expires (at most 100 years)."
    ),
    max_uses: int | None = typer.Option(None, "--max-uses", min=1, max=2**31 - 1, help="Enrollments it may make."),
    agent_names: list[str] | None = typer.Option(None, "--agent-name", help="An agent name it may enroll (repeat)."),
    kind: KindOption = "enroll",
    admin: AdminFlag = False,
    as_json: opt.AsJson = False,
    collector: opt.Collector = None,
    token: opt.AdminToken = None,
) -> None:
    """Create an enrollment token for agents, or an admin or metrics token (--name and --expires-in only; a metrics
    token reads /metrics and nothing else); prints the token alone on stdout (with --json: its id, name and the
    token)."""
    kind = _kind(kind, admin)
    expires_at = datetime.now(timezone.utc) + timedelta(hours=expires_in_h) if expires_in_h else None
    with CollectorClient(collector, token) as client:
        if kind == "enroll":
            limits = {"max_uses": max_uses, "agent_names": agent_names or None}
            created = client.create_enrollment_token(name, expires_at=expires_at, **limits)
        else:
            created = client.create_token(cast(NamedKind, kind), name, expires_at)
    err.print(f"{WORDS[kind]} token {created.token_id} created{_USE[kind]}")
    if as_json:
        print(json.dumps(created.model_dump(mode="json")))
        return
    out.print(created.token)


_USE = {"enroll": "; agents enroll with it once", "admin": "", "metrics": "; Prometheus scrapes /metrics with it"}


@token_app.command("list")
def token_list(
    kind: KindOption = "enroll",
    admin: AdminFlag = False,
    as_json: opt.AsJson = False,
    collector: opt.Collector = None,
    token: opt.AdminToken = None,
) -> None:
    """Enrollment (or admin, or metrics) tokens: id, name, status (live, expired, used up, revoked), created,
    expiry, uses (never the tokens themselves)."""
    kind = _kind(kind, admin)
    with CollectorClient(collector, token) as client:
        found = client.enrollment_tokens() if kind == "enroll" else client.tokens(cast(NamedKind, kind))
    now = datetime.now(timezone.utc)
    if as_json:
        print(json.dumps([_shown(t, now) for t in found]))
        return
    enroll = kind == "enroll"
    table = Table("id", "name", "status", "created", "expires", *(("uses",) if enroll else ()), "revoked")
    for t in found:
        uses = (f"{t.uses} of {t.max_uses}" if t.max_uses is not None else str(t.uses),) if enroll else ()
        table.add_row(t.token_id, t.name or "", status(t, now), minute(t.created_at), minute(t.expires_at), *uses,
                      minute(t.revoked_at))  # fmt: skip
    if not found:
        table.caption = f"no {WORDS[kind]} token yet: latbench token create" + ("" if enroll else f" --kind {kind}")
    out.print(table)


TokenStatus = Literal["live", "expired", "used up", "revoked"]


def status(t: EnrollmentTokenInfo, now: datetime) -> TokenStatus:
    """Whether the token still works at ``now``, and if not, the first reason it does not."""
    if t.revoked_at is not None:
        return "revoked"
    if t.expires_at is not None and aware(t.expires_at) <= now:
        return "expired"
    if t.max_uses is not None and t.uses >= t.max_uses:
        return "used up"
    return "live"


def _shown(t: EnrollmentTokenInfo, now: datetime) -> dict[str, Any]:
    return {**t.model_dump(mode="json"), "status": status(t, now)}


@token_app.command("revoke")
def token_revoke(
    token_id: str = typer.Argument(..., help="Token id (from `latbench token list`) or the token itself."),
    kind: KindOption = "enroll",
    admin: AdminFlag = False,
    as_json: opt.AsJson = False,
    collector: opt.Collector = None,
    token: opt.AdminToken = None,
) -> None:
    """Revoke an enrollment token: no new agent can enroll with it; enrolled agents keep working. With --kind,
    an admin token (not the last live one) or a metrics token."""
    kind = _kind(kind, admin)
    with CollectorClient(collector, token) as client:
        if kind == "enroll":
            revoked = client.revoke_enrollment_token(token_id)
            err.print(f"enrollment token {revoked.token_id} revoked; agents enrolled with it keep their own tokens")
        else:
            revoked = client.revoke_token(cast(NamedKind, kind), token_id)
            err.print(f"{kind} token {revoked.token_id} revoked")
    if as_json:
        print(json.dumps(_shown(revoked, datetime.now(timezone.utc))))
        return
    out.print(revoked.token_id)
