"""``latbench agents`` and ``latbench devices``: who is enrolled, on which hardware, and taking that access away."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import typer

from latbench.cli import options as opt
from latbench.cli.console import Table, ago, err, minute, out
from latbench.client import CollectorClient

agents_app = typer.Typer(help="Enrolled agents.", no_args_is_help=True)


@agents_app.command("list")
def agents_list(as_json: opt.AsJson = False, collector: opt.Collector = None, token: opt.AdminToken = None) -> None:
    """Every enrolled agent: device, state (live or revoked), enrolled, last seen, its current token's id and age."""
    with CollectorClient(collector, token) as client:
        agents = client.agents()
    if as_json:
        print(json.dumps([a.model_dump(mode="json") for a in agents]))
        return
    now = datetime.now(timezone.utc)
    table = Table("agent", "device", "state", "enrolled", "last seen", "token", "token age")
    for a in agents:
        state = f"revoked {minute(a.revoked_at)}" if a.revoked_at is not None else a.state
        table.add_row(a.name, a.device, state, minute(a.enrolled_at), ago(a.last_seen, now), a.token_id or "-",
                      ago(a.token_created_at, now))  # fmt: skip
    if not agents:
        table.caption = "no agent enrolled yet: latbench token create, then latbench agent run on a device"
    out.print(table)


@agents_app.command("revoke")
def agents_revoke(
    name: str = typer.Argument(..., help="Agent name (from `latbench agents list`)."),
    as_json: opt.AsJson = False,
    collector: opt.Collector = None,
    token: opt.AdminToken = None,
) -> None:
    """Revoke an agent's token and put its jobs back in the queue; enrolling it again takes an admin token. Prints
    the agent's id (with --json: its name, id and how many leased jobs went back)."""
    with CollectorClient(collector, token) as client:
        revoked = client.revoke_agent(name)
    err.print(f"agent {revoked.name} revoked; {revoked.released} leased jobs went back to the queue")
    if as_json:
        print(json.dumps(revoked.model_dump(mode="json")))
        return
    out.print(revoked.agent_id)


def devices_command(as_json: opt.AsJson = False, collector: opt.Collector = None, token: opt.AdminToken = None) -> None:
    """Devices known to the collector: online, last seen, fingerprint, runtimes, agents (revoked ones marked so).

    The JSON names each device both ``name`` and ``device``, the key ``campaign status --json`` uses; revoked
    agents are under ``revoked_agents``, not ``agents``."""
    with CollectorClient(collector, token) as client:
        devices = client.devices()
    if as_json:
        print(json.dumps([{**d.model_dump(mode="json"), "device": d.name, "revoked_agents": d.revoked_agents}
                          for d in devices]))  # fmt: skip
        return
    now = datetime.now(timezone.utc)
    table = Table("device", "online", "last seen", "fingerprint", "cpu", "runtimes", "agents")
    for d in devices:
        agents = [*d.agents, *(f"{name} (revoked)" for name in d.revoked_agents)]
        table.add_row(d.name, "yes" if d.online else "no", ago(d.last_seen, now), d.fingerprint,
                      str(d.machine.get("cpu_model", "")), ", ".join(d.runtimes), ", ".join(agents))  # fmt: skip
    conflicts = [f"{d.name}: {', '.join(d.conflicts)}" for d in devices if d.conflicts]
    if conflicts:
        table.caption = (
            f"agents whose hardware differs from their device's record (check them; `latbench agents revoke NAME` "
            f"an impostor): {'; '.join(conflicts)}"
        )
    out.print(table)
