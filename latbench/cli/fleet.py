"""``latbench agents`` and ``latbench devices``: who is enrolled, on which hardware, taking that access away, and a
device's lifecycle (rename, retire, unretire)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import typer
from pydantic import TypeAdapter, ValidationError

from latbench.cli import options as opt
from latbench.cli.console import Table, ago, err, minute, out
from latbench.client import CollectorClient
from latbench.protocol import DeviceChanged, Name

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


devices_app = typer.Typer(invoke_without_command=True)


@devices_app.callback()
def devices_command(
    ctx: typer.Context,
    retired: bool = typer.Option(False, "--all", help="List retired devices too (state retired)."),
    as_json: opt.AsJson = False,
    collector: opt.Collector = None,
    token: opt.AdminToken = None,
) -> None:
    """Devices known to the collector: online, last seen, fingerprint, runtimes, agents (revoked ones marked so).
    Retired devices are left out unless --all.

    The JSON names each device both ``name`` and ``device``, the key ``campaign status --json`` uses, and gives its
    ``state`` (live or retired); revoked agents are under ``revoked_agents``, not ``agents``."""
    if ctx.invoked_subcommand is not None:
        return
    with CollectorClient(collector, token) as client:
        devices = client.devices(retired)
    if as_json:
        print(json.dumps([{**d.model_dump(mode="json"), "device": d.name, "state": d.state,
                           "revoked_agents": d.revoked_agents} for d in devices]))  # fmt: skip
        return
    now = datetime.now(timezone.utc)
    table = Table("device", "online", "last seen", "fingerprint", "cpu", "runtimes", "agents")
    for d in devices:
        agents = [*d.agents, *(f"{name} (revoked)" for name in d.revoked_agents)]
        online = f"retired {minute(d.retired_at)}" if d.state == "retired" else "yes" if d.online else "no"
        table.add_row(d.name, online, ago(d.last_seen, now), d.fingerprint, str(d.machine.get("cpu_model", "")),
                      ", ".join(d.runtimes), ", ".join(agents))  # fmt: skip
    conflicts = [f"{d.name}: {', '.join(d.conflicts)}" for d in devices if d.conflicts]
    if conflicts:
        table.caption = (
            f"agents whose hardware differs from their device's record (check them; `latbench agents revoke NAME` "
            f"an impostor): {'; '.join(conflicts)}"
        )
    out.print(table)


_NAME = TypeAdapter(Name)


def _device_name(value: str | None) -> str | None:
    """A device name as enrollment takes one (``protocol.Name``), or a usage error (exit 2) before the collector
    is asked."""
    if value is None:
        return None
    try:
        return _NAME.validate_python(value)
    except ValidationError:
        raise typer.BadParameter(
            f"{value!r} is not a device name: 1 to 128 letters, digits and . _ @ : + -, starting with a letter or digit"
        ) from None


@devices_app.command("rename")
def devices_rename(
    name: str = typer.Argument(..., help="The device's name (from `latbench devices`)."),
    new_name: str = typer.Argument(..., callback=_device_name, help="Its new name."),
    as_json: opt.AsJson = False,
    collector: opt.Collector = None,
    token: opt.AdminToken = None,
) -> None:
    """Rename a device: its results (exports, datasets built from now on), the campaigns that name it and its
    predictor (DATA_DIR/models/NAME.pt) take the new name. Prints the new name (with --json: the change)."""
    with CollectorClient(collector, token) as client:
        changed = client.rename_device(name, new_name)
    _changed(changed, f"device {changed.previous_name} renamed {changed.name}", as_json)


@devices_app.command("retire")
def devices_retire(
    name: str = typer.Argument(..., help="The device's name (from `latbench devices`)."),
    as_json: opt.AsJson = False,
    collector: opt.Collector = None,
    token: opt.AdminToken = None,
) -> None:
    """Retire a device whose hardware died or left: its agents get no more work, its leased jobs go back to the
    queue, and it moves with its results to NAME@retired-DATE, hidden from `latbench devices` (--all shows it),
    so that replacement hardware can enroll under NAME as a new device. Prints the retired name (`latbench
    devices unretire` takes it back)."""
    with CollectorClient(collector, token) as client:
        changed = client.retire_device(name)
    _changed(changed, f"device {changed.previous_name} retired as {changed.name}; {changed.released} leased jobs "
             f"went back to the queue; replacement hardware may now enroll as --device-name "
             f"{changed.previous_name}", as_json)  # fmt: skip


@devices_app.command("unretire")
def devices_unretire(
    name: str = typer.Argument(
        ..., help="The retired device's name (NAME@retired-DATE, from `latbench devices --all`)."
    ),
    new_name: str | None = typer.Option(
        None, "--name", callback=_device_name, help="The name to take (default: the one it had, if still free)."
    ),
    as_json: opt.AsJson = False,
    collector: opt.Collector = None,
    token: opt.AdminToken = None,
) -> None:
    """Bring a retired device back: its agents work again, under the name it had or --name. Prints its name."""
    with CollectorClient(collector, token) as client:
        changed = client.unretire_device(name, new_name)
    _changed(changed, f"device {changed.previous_name} is live again as {changed.name}", as_json)


def _changed(changed: DeviceChanged, message: str, as_json: bool) -> None:
    """Say what happened on stderr (and where the predictor went), print the device's name or the change."""
    err.print(message + (f"; its predictor is now models/{changed.predictor}" if changed.predictor else ""))
    if as_json:
        print(json.dumps(changed.model_dump(mode="json")))
        return
    out.print(changed.name)
