"""``latbench agent run``: serve a collector from this machine, measuring what it leases until stopped;
``latbench agent requeue``: its dead letters back into the queue."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from latbench.agents.daemon import PUSH_INTERVAL_S, AgentDaemon, run_agent
from latbench.agents.identity import default_state_dir, make_state_dir
from latbench.agents.quiet import QuietPolicy
from latbench.agents.remote import open_runner
from latbench.agents.reports import runtime_offer
from latbench.agents.spool import SPOOL_FILE, Spool
from latbench.cli import options as opt
from latbench.cli.logs import log_to_stderr
from latbench.protocol import MAX_JOBS_PER_LEASE

agent_app = typer.Typer(
    help="Run this machine as a measurement agent of a collector.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@agent_app.command("run")
def run_command(
    collector: opt.RequiredCollector,
    token: Annotated[str | None, opt.enrollment_token("Enrollment token; needed to enroll only.")] = None,
    ca_cert: opt.CaCert = None,
    name: str | None = typer.Option(
        None, "--name", help="Agent name when enrolling (default: the host name; later starts: the enrolled one)."
    ),
    device_name: str | None = typer.Option(
        None, "--device-name", help="Device name when enrolling (default: the collector names the device)."
    ),
    runtime: list[str] = typer.Option(["onnxruntime"], "--runtime", "-r", help="Runtime to offer (repeatable)."),
    state_dir: Path | None = typer.Option(
        None, "--state-dir", help=f"Identity, spool and artifact cache (default {default_state_dir()})."
    ),
    max_jobs: int = typer.Option(1, "--max-jobs", min=1, max=MAX_JOBS_PER_LEASE, help="Jobs to lease at once."),
    push_interval: float = typer.Option(
        PUSH_INTERVAL_S,
        "--push-interval",
        min=0.0,
        help="Push a result sooner than its lease's batch once it has waited this many seconds.",
    ),
    max_idle: float | None = typer.Option(
        None, "--max-idle", min=0.0, help="Exit after this many seconds without work."
    ),
    poll: float | None = typer.Option(
        None, "--poll", min=0.1, help="Seconds between lease requests while idle (default: as the collector says)."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also log heartbeat failures."),
    remote: opt.Remote = None,
    remote_tool: opt.RemoteTool = "stub",
    remote_command: opt.RemoteCommand = None,
    cpu_mask: opt.CpuMask = None,
    key: opt.SshKey = None,
    known_hosts: opt.KnownHosts = None,
    host_key_fingerprint: opt.HostKeyFingerprint = None,
    device_wait: opt.DeviceWait = opt.DEVICE_WAIT_S,
    wait_idle: bool = typer.Option(
        True, "--wait-idle/--no-wait-idle", help="Before each timing here, wait while other programs keep the CPU busy."
    ),
    wait_idle_max: float = typer.Option(60.0, "--wait-idle-max", min=0.0, help="Seconds to wait for idle, at most."),
) -> None:
    """Enroll (first start), then lease, measure and push results until SIGTERM/SIGINT; exits 0 when stopped."""
    log_to_stderr(verbose)
    state_dir = make_state_dir(state_dir or default_state_dir())  # before connecting to a remote device
    runtimes = list(dict.fromkeys(runtime))
    runner = None
    if remote:
        runner = open_runner(
            remote, tool=remote_tool, command=remote_command, cpu_mask=cpu_mask, key_file=key,
            known_hosts=known_hosts, host_key_fingerprint=host_key_fingerprint, wait_s=device_wait,
        )  # fmt: skip
    try:
        agent = AgentDaemon(
            collector,
            runner.offers(runtimes) if runner else [runtime_offer(r) for r in runtimes],
            state_dir=state_dir,
            enrollment_token=token,
            name=name,
            device_name=device_name,
            max_jobs=max_jobs,
            max_idle_s=max_idle,
            poll_s=poll,
            remote=runner,
            push_interval_s=push_interval,
            quiet=QuietPolicy(max_wait_s=wait_idle_max) if wait_idle else None,
            ca_cert=ca_cert,
        )
    except BaseException:
        if runner:
            runner.close()
        raise
    run_agent(agent)


@agent_app.command("requeue")
def requeue_command(
    state_dir: Path | None = typer.Option(
        None, "--state-dir", help=f"The agent's state dir (default {default_state_dir()})."
    ),
    as_json: opt.AsJson = False,
) -> None:
    """Queue the agent's dead letters (results a collector refused outright) for pushing again, once what
    refused them is fixed; the agent pushes them at its next start or push. Not while an agent runs there."""
    from latbench.cli.console import err

    path = (state_dir or default_state_dir()) / SPOOL_FILE
    if not path.exists():
        raise typer.BadParameter(f"no agent spool at {path}", param_hint="--state-dir")
    with Spool(path) as spool:
        queued = spool.requeue_dead()
        pending = spool.counts().pending
    if as_json:
        print(json.dumps({"requeued": queued, "pending": pending}))
    else:
        err.print(f"{queued} dead letter(s) queued again; {pending} result(s) now wait for the next push")
