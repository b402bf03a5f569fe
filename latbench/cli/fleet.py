"""``latbench agents`` and ``latbench devices``: who is enrolled, on which hardware, and taking that access away."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import typer

from latbench.cli import options as opt
from latbench.cli.console import Table, err, out
from latbench.client import CollectorClient

agents_app = typer.Typer(help="Enrolled agents.", no_args_is_help=True)


@agents_app.command("revoke")
def agents_revoke(
    name: str = typer.Argument(..., help="Agent name (from `latbench devices`)."),
    collector: opt.Collector = None,
    token: opt.AdminToken = None,
) -> None:
    """Revoke an agent's token and put its jobs back in the queue; enrolling it again takes an admin token."""
    with CollectorClient(collector, token) as client:
        revoked = client.revoke_agent(name)
    err.print(f"agent {revoked.name} revoked; {revoked.released} leased jobs went back to the queue")
    out.print(revoked.agent_id)


def devices_command(as_json: opt.AsJson = False, collector: opt.Collector = None, token: opt.AdminToken = None) -> None:
    """Devices known to the collector: online, last seen, fingerprint, runtimes, agents."""
    with CollectorClient(collector, token) as client:
        devices = client.devices()
    if as_json:
        print(json.dumps([d.model_dump(mode="json") for d in devices]))
        return
    now = datetime.now(timezone.utc)
    table = Table("device", "online", "last seen", "fingerprint", "cpu", "runtimes", "agents")
    for d in devices:
        last = d.last_seen if d.last_seen.tzinfo else d.last_seen.replace(tzinfo=timezone.utc)
        ago = f"{int((now - last).total_seconds())} s ago"
        table.add_row(d.name, "yes" if d.online else "no", ago, d.fingerprint, str(d.machine.get("cpu_model", "")),
                      ", ".join(d.runtimes), ", ".join(d.agents))  # fmt: skip
    conflicts = [f"{d.name}: {', '.join(d.conflicts)}" for d in devices if d.conflicts]
    if conflicts:
        table.caption = (
            f"agents whose hardware differs from their device's record (check them; `latbench agents revoke NAME` "
            f"an impostor): {'; '.join(conflicts)}"
        )
    out.print(table)
