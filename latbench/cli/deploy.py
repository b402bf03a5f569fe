"""``latbench deploy user@host``: install and start an agent on a Linux host over SSH (again: upgrade in place)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from latbench.cli import options as opt
from latbench.cli.console import err, out
from latbench.cli.progress import ProgressBars


def deploy_command(
    host: Annotated[str, typer.Argument(help="user@host, or ssh://user@host:port.")],
    collector: opt.RequiredCollector,
    token: Annotated[str, opt.enrollment_token()],
    port: int | None = typer.Option(None, "--port", "-p", min=1, max=65535, help="SSH port (default 22)."),
    key: Path | None = typer.Option(None, "--key", "-i", help="SSH private key (default: ssh-agent, ~/.ssh keys)."),
    known_hosts: Path | None = typer.Option(
        None, "--known-hosts", help="known_hosts file that verifies the host key (default ~/.ssh/known_hosts)."
    ),
    host_key_fingerprint: str | None = opt.host_key_fingerprint(
        "Pin the host key by SHA256 fingerprint (saved to --known-hosts)."
    ),
    runtime: list[str] = typer.Option(["onnxruntime"], "--runtime", "-r", help="Runtime to offer (repeatable)."),
    python: str = typer.Option("python3", "--python", help="Python on the host that the venv is made from."),
    remote_dir: str | None = typer.Option(
        None, "--remote-dir", help="Deployment dir on the host.", show_default="~/.local/share/latbench"
    ),
    name: str | None = typer.Option(None, "--name", help="Agent name (default: the host's name)."),
    wheel: Path | None = typer.Option(None, "--wheel", help="Ship this latbench wheel instead of building one."),
    wheelhouse: Path | None = typer.Option(
        None, "--wheelhouse", help="Directory of dependency wheels for the host; installs without an index."
    ),
    system_site_packages: bool = typer.Option(
        False, "--system-site-packages", help="Let the venv use the host Python's packages (vendor numpy/ORT)."
    ),
    offline: bool = typer.Option(False, "--offline", help="Never use a package index on the host."),
    agent_arg: list[str] = typer.Option(
        [], "--agent-arg", help="Extra argument for `latbench agent run` (repeatable)."
    ),
    admin_token: str | None = typer.Option(
        None,
        "--admin-token",
        envvar=opt.ADMIN_TOKEN_ENV,
        show_envvar=True,
        callback=opt.typed_secret,
        help="With it, wait until the collector lists the agent.",
    ),
    ca_cert: opt.CaCert = None,
    timeout: float = typer.Option(120.0, "--timeout", min=1.0, help="Seconds to wait for the agent to enroll."),
    as_json: opt.AsJson = False,
) -> None:
    """Deploy an agent to HOST (see docs/deploy.md); prints the agent id. Running it again upgrades in place."""
    from latbench.agents.remote.ssh import SshTarget
    from latbench.deploy import DeploySpec, deploy

    spec = DeploySpec(
        collector_url=collector,
        enrollment_token=token,
        runtimes=list(dict.fromkeys(runtime)),
        python=python,
        remote_dir=remote_dir,
        agent_name=name,
        agent_args=agent_arg,
        wheel=wheel,
        wheelhouse=wheelhouse,
        system_site_packages=system_site_packages,
        offline=offline,
        ca_cert=ca_cert,
    )
    done = deploy(
        SshTarget.parse(host, port),
        spec,
        key_file=key,
        known_hosts=known_hosts,
        host_key_fingerprint=host_key_fingerprint,
        admin_token=admin_token,
        timeout_s=timeout,
        progress=ProgressBars(labels={}),
    )
    verb = "upgraded" if done.upgraded else "deployed"
    err.print(f"{verb} agent {done.agent_name} on {done.host} ({done.service}); enrolled as device {done.device_name}")
    out.print(json.dumps(done.as_dict()) if as_json else done.agent_id)
