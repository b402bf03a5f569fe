"""``latbench campaign``: create, follow, list, order, pause and cancel measurement campaigns on a collector, over
HTTP."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer
from rich.live import Live
from rich.text import Text

from latbench import profiles, stability
from latbench.agents.modelfile import ModelFile, check_input_names, parse_input_shapes
from latbench.agents.runtimes import get_runtime
from latbench.cli import options as opt
from latbench.cli.console import Table, ago, err, out, printable, styled
from latbench.client import CollectorClient, model_paths
from latbench.errors import LatbenchError
from latbench.local.models import format_refusal
from latbench.precision import check_precision
from latbench.protocol import (
    FINISHED_STATES,
    AdaptivePlan,
    CampaignCreate,
    CampaignStatus,
    LearningPoint,
    MeasurementSettings,
    ModelInfo,
)

campaign_app = typer.Typer(help="Measurement campaigns.", no_args_is_help=True)


@campaign_app.command("create")
def campaign_create(
    runtime: Annotated[str, opt.runtime("Runtime the agents must offer.")],
    space: Annotated[str | None, typer.Option("--space", "-s", help="Search space of the architectures.")] = None,
    models: list[Path] | None = typer.Option(
        None, "--models", help="A model file or a directory of .onnx/.tflite files to upload and measure (repeatable)."
    ),
    input_shape: list[str] | None = typer.Option(
        None, "--input", help="A model input's shape, NAME:1x3x224x224, for dynamic dimensions (repeatable)."
    ),
    samples: Annotated[int | None, opt.samples("Seeded architectures to measure.")] = None,
    arch: Annotated[list[str] | None, opt.arch("An architecture to measure (repeatable).")] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Sampling seed.")] = 0,
    connected_only: bool = typer.Option(False, "--connected-only", help="Sample only connected cells."),
    provider: str = typer.Option("cpu", "--provider", help="Runtime device: cpu, cuda or tensorrt."),
    precision: str = typer.Option("fp32", "--precision", help="Numeric precision: fp32, or int8 (quantised)."),
    batch: int = typer.Option(1, "--batch", "-b", min=1),
    threads: opt.Threads = 1,
    resolution: int | None = typer.Option(
        None, "--resolution", min=1, help="Input height and width (default: the space's)."
    ),
    classes: opt.Classes = None,
    device: Annotated[list[str] | None, opt.device("Device to measure on (repeatable; default: all).")] = None,
    name: str | None = typer.Option(None, "--name", help="A label for the campaign."),
    priority: int = typer.Option(
        0, "--priority", help="Higher is leased first; equal priorities go oldest first (change: campaign priority)."
    ),
    min_runs: opt.MinRuns = opt.TIMING.min_runs,
    min_time: opt.MinTime = opt.TIMING.min_time_s,
    max_time: opt.MaxTime = opt.TIMING.max_time_s,
    warmup_runs: opt.WarmupRuns = opt.TIMING.warmup_runs,
    warmup_time: opt.WarmupTime = opt.TIMING.warmup_time_s,
    cv_threshold: opt.CvThreshold = opt.TIMING.cv_threshold,
    drift_tolerance: opt.DriftTolerance = opt.TIMING.drift_tolerance,
    attempts: opt.Attempts = opt.TIMING.max_attempts,
    profile: opt.Profile = False,
    profile_runs: opt.ProfileRuns = profiles.DEFAULT_RUNS,
    adaptive: bool = typer.Option(
        False, "--adaptive", help="Measure per device what its predictor needs, until --target-srcc or --budget."
    ),
    target_srcc: float = typer.Option(0.95, "--target-srcc", help="With --adaptive: the estimated SRCC to stop at."),
    budget: int = typer.Option(60, "--budget", help="With --adaptive: the most results per device."),
    adaptive_batch: int = typer.Option(5, "--adaptive-batch", help="With --adaptive: architectures per step."),
    as_json: opt.AsJson = False,
    collector: opt.Collector = None,
    token: opt.AdminToken = None,
) -> None:
    """Create a campaign of a space's architectures, or of model files (uploaded first), or with --adaptive one
    that picks each device's architectures from its predictor's errors; prints its id alone on stdout (with
    --json its status, as `campaign status --json`)."""
    timing = opt.timing(
        warmup_runs=warmup_runs,
        warmup_time=warmup_time,
        min_runs=min_runs,
        min_time=min_time,
        max_time=max_time,
        cv_threshold=cv_threshold,
        drift_tolerance=drift_tolerance,
        attempts=attempts,
        profile_runs=profile_runs if profile else 0,
    )
    settings = MeasurementSettings.model_validate(asdict(timing))
    if models:
        if space is not None or samples is not None or arch or seed or connected_only:
            raise typer.BadParameter("give --models files or a --space's architectures, not both")
        if batch != 1 or resolution is not None or classes is not None:
            raise typer.BadParameter("a model file's shapes are its own: give dynamic ones with --input")
        if precision != "fp32":
            raise typer.BadParameter("a model file is measured at its own precision: --precision is for --space")
        shapes = parse_input_shapes(input_shape or [])
        opened = [ModelFile.open(path) for path in model_paths(models)]
        check_input_names(opened, shapes)
        fmt = get_runtime(runtime).artifact_format
        first: dict[str, ModelFile] = {}
        for model in opened:  # refused here before any file travels, as the collector or the agents would
            if (why := format_refusal(model, runtime, fmt)) is not None:
                raise typer.BadParameter(f"{model.path}: {why}")
            model.check_self_contained()
            model.input_shapes(shapes)
            kept = first.setdefault(model.sha256, model)
            if kept is not model and kept.path.resolve() != model.path.resolve():
                err.print(f"{model.path.name}: the same file as {kept.path.name}, measured once as {kept.path.name}")
        with CollectorClient(collector, token) as client:
            warn_unknown_devices(client, device or [])
            campaign_id = client.create_model_campaign(
                models, runtime, input_shapes=shapes, on_upload=_uploaded, provider=provider, threads=threads,
                devices=device or [], name=name, settings=settings, priority=priority,
            )  # fmt: skip
            _created(client, campaign_id, as_json)
        return
    if space is None:
        raise typer.BadParameter("give --space (architectures) or --models (model files)")
    if input_shape:
        raise typer.BadParameter("--input is for --models files")
    plan = None
    if adaptive:
        if samples is not None or arch:
            raise typer.BadParameter("an --adaptive campaign picks its own architectures: drop --samples and --arch")
        plan = _adaptive_plan(target_srcc, budget, adaptive_batch)
        arch = _first_batch(space, plan.batch)
    elif (samples is None) == (not arch):
        raise typer.BadParameter("give --samples N or at least one --arch, not both")
    try:
        checked = check_precision(precision)
    except LatbenchError as exc:
        raise typer.BadParameter(str(exc)) from None
    spec = CampaignCreate(
        space=space,
        samples=samples,
        archs=arch or None,
        adaptive=plan,
        seed=seed,
        sampler="connected" if connected_only else "uniform",
        runtime=runtime,
        provider=provider,
        precision=checked,
        batch=batch,
        threads=threads,
        resolution=resolution,
        classes=classes,
        devices=device or [],
        name=name,
        settings=settings,
        priority=priority,
    )
    with CollectorClient(collector, token) as client:
        warn_unknown_devices(client, device or [])
        _created(client, client.create_campaign(spec), as_json)


def _created(client: CollectorClient, campaign_id: str, as_json: bool) -> None:
    """Say how to follow the new campaign; print its id alone, or with ``as_json`` its status."""
    err.print(f"campaign created; follow it with: latbench campaign status {campaign_id} --watch")
    if as_json:
        print(client.campaign(campaign_id).model_dump_json())
    else:
        out.print(campaign_id)


def _adaptive_plan(target_srcc: float, budget: int, batch: int) -> AdaptivePlan:
    from latbench.predictor.adaptive import check_plan, unverified_budget

    check_plan(target_srcc, budget, batch)
    short = unverified_budget(budget)
    if short:
        err.print(styled("warning:", "yellow", short))
    return AdaptivePlan(target_srcc=target_srcc, budget=budget, batch=batch)


def _first_batch(space: str, batch: int) -> list[str]:
    """Every device's first architectures (``latbench.predictor.adaptive.first_batch``)."""
    from latbench.predictor.adaptive import first_batch

    return first_batch(space, batch)


def adaptive_table(status: CampaignStatus) -> Table:
    """Per device of an adaptive campaign: its learning curve (results, estimated SRCC +/- its spread, and where
    random check results came in) and stop."""
    assert status.adaptive is not None
    plan = status.adaptive
    table = Table(title=f"adaptive: target SRCC {plan.target_srcc}, budget {plan.budget}, batches of {plan.batch}")
    for column in ("device", "state", "learning curve (results: estimated SRCC)", "model"):
        table.add_column(column)
    for d in status.adaptive_devices or []:
        curve = ", ".join(_point(p, d.curve[i - 1].checks if i else 0) for i, p in enumerate(d.curve)) or "-"
        state = d.state if d.stop is None else f"stopped ({d.stop})"
        state += "".join(f": {why}" for why in (d.error, d.caveat) if why)
        table.add_row(d.device, state, curve, d.model or "-")
    return table


def _point(p: LearningPoint, checks_before: int) -> str:
    """One point of a learning curve; where check results came in (the verification batch), how many it holds."""
    checked = f" ({p.checks} checks)" if p.checks > checks_before else ""
    return f"{p.results}: {p.srcc:.3f}±{p.srcc_std:.3f}{checked}"


def _uploaded(path: Path, model: ModelInfo, uploaded: bool) -> None:
    where = "uploaded" if uploaded else "already on the collector"
    err.print(f"{path}: {where} ({model.format}, {model.size / 2**20:.1f} MiB, sha256 {model.sha256[:12]})")


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


OFFLINE_ETA = "no eta for a device that is not online: its agents have not been heard from lately"


def status_table(status: CampaignStatus, now: datetime | None = None) -> Table:
    """Per device: whether it is online, when it last finished a job and since when it holds its oldest lease (a
    stuck agent holds one long), its jobs, pace and ETA (blank for a device not online)."""
    now = now or datetime.now(timezone.utc)
    space = status.space if status.precision in (None, "fp32") else f"{status.space} {status.precision}"
    priority = f", priority {status.priority}" if status.priority else ""
    table = Table(title=f"campaign {status.campaign_id} ({space}, {status.runtime}/{status.provider}, "
                  f"batch {status.batch}, {status.threads} thread(s){priority}): {status.state}")  # fmt: skip
    columns = ("device", "online", "last result", "leased since", "queued", "leased", "done", "failed", "total",
               "per min", "eta")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column in columns[:4] else "right")
    for d in status.devices:
        rate = f"{d.rate_per_min:.1f}" if d.rate_per_min else "-"
        online = "-" if d.online is None else ("yes" if d.online else "no")
        eta = "" if d.online is False and d.eta_s is None else _eta(d.eta_s)
        table.add_row(d.device, online, ago(d.last_result_at, now), ago(d.leased_since, now), str(d.queued),
                      str(d.leased), str(d.done), str(d.failed), str(d.total), rate, eta)  # fmt: skip
    reasons = _failure_lines(status)
    if status.error:
        table.caption = Text(printable("\n".join([status.error, *reasons])), style="red")
    elif reasons:
        table.caption = Text(printable("\n".join(reasons)), style="red")
    elif not status.devices:
        table.caption = "no device has joined yet: start an agent that offers this runtime"
    elif status.state == "paused":
        table.caption = "paused: none of its jobs is leased until `latbench campaign resume`"
    elif any(d.online is False and d.eta_s is None for d in status.devices):
        table.caption = OFFLINE_ETA
    return table


def _failure_lines(status: CampaignStatus) -> list[str]:
    """Why each device's failed jobs failed: a line per distinct error (on one line), most frequent first."""
    return [
        f"{d.device}: {reason.jobs} job{'s' if reason.jobs != 1 else ''} failed: {' '.join(reason.error.split())}"
        for d in status.devices
        for reason in d.failures
    ]


@campaign_app.command("status")
def campaign_status(
    campaign_id: str = typer.Argument(..., help="Campaign id."),
    watch: bool = typer.Option(False, "--watch", "-w", help="Refresh until the campaign is done."),
    interval: float = typer.Option(2.0, "--interval", min=0.1, help="Seconds between refreshes with --watch."),
    as_json: opt.AsJson = False,
    collector: opt.Collector = None,
    token: opt.AdminToken = None,
) -> None:
    """Progress per device: queued, leased, done, failed, rate and ETA; then how many results are unstable, and why."""
    with CollectorClient(collector, token) as client:
        status = client.campaign(campaign_id)
        if as_json:
            print(status.model_dump_json())
            return
        if not watch:
            out.print(status_table(status))
        else:
            with Live(status_table(status), console=err, refresh_per_second=4) as live:
                while status.state not in FINISHED_STATES:
                    time.sleep(interval)
                    status = client.campaign(campaign_id)
                    live.update(status_table(status))
        if status.adaptive is not None:
            out.print(adaptive_table(status))
        if any(d.done for d in status.devices):
            warning = stability.summary(client.iter_results(campaign_id))
            if warning:
                err.print(styled("warning:", "yellow", warning))


@campaign_app.command("cancel")
def campaign_cancel(
    campaign_id: str = typer.Argument(..., help="Campaign id (from `latbench campaign list`)."),
    as_json: opt.AsJson = False,
    collector: opt.Collector = None,
    token: opt.AdminToken = None,
) -> None:
    """Cancel a campaign: none of its queued jobs is leased any more; leased ones may finish, and every result is
    kept. Cancelling twice is a no-op; prints the campaign's id."""
    with CollectorClient(collector, token) as client:
        _changed(client.cancel_campaign(campaign_id), "cancelled", as_json)


@campaign_app.command("pause")
def campaign_pause(
    campaign_id: str = typer.Argument(..., help="Campaign id (from `latbench campaign list`)."),
    as_json: opt.AsJson = False,
    collector: opt.Collector = None,
    token: opt.AdminToken = None,
) -> None:
    """Pause a campaign: none of its jobs is leased until `latbench campaign resume`; leased ones may finish.
    Pausing twice is a no-op, a campaign with no work left cannot be paused; prints the campaign's id."""
    with CollectorClient(collector, token) as client:
        _changed(client.pause_campaign(campaign_id), "paused", as_json)


@campaign_app.command("resume")
def campaign_resume(
    campaign_id: str = typer.Argument(..., help="Campaign id (from `latbench campaign list`)."),
    as_json: opt.AsJson = False,
    collector: opt.Collector = None,
    token: opt.AdminToken = None,
) -> None:
    """Resume a paused campaign: its jobs are leased again; prints the campaign's id."""
    with CollectorClient(collector, token) as client:
        _changed(client.resume_campaign(campaign_id), "resumed", as_json)


@campaign_app.command("priority")
def campaign_priority(
    campaign_id: str = typer.Argument(..., help="Campaign id (from `latbench campaign list`)."),
    priority: int = typer.Argument(..., help="Higher is leased first; equal priorities go oldest first."),
    as_json: opt.AsJson = False,
    collector: opt.Collector = None,
    token: opt.AdminToken = None,
) -> None:
    """Change a campaign's priority, from the collector's next lease request on; prints the campaign's id."""
    with CollectorClient(collector, token) as client:
        _changed(client.set_campaign_priority(campaign_id, priority), f"given priority {priority}", as_json)


def _changed(status: CampaignStatus, what: str, as_json: bool) -> None:
    """Say what an admin action did (its status as JSON with ``as_json``), and print the campaign's id."""
    if as_json:
        print(status.model_dump_json())
        return
    leased = sum(d.leased for d in status.devices)
    still = f"; {leased} leased job(s) may still finish" if leased and what in ("cancelled", "paused") else ""
    err.print(f"campaign {status.campaign_id} {what}{still}")
    out.print(status.campaign_id)


def warn_unknown_devices(client: CollectorClient, names: list[str]) -> None:
    """Say on stderr which of ``names`` the collector knows no device of: a campaign waits for such a device
    until one of its agents enrolls, which may be meant (a device still to come) or a typo."""
    if not names:
        return
    known = [d.name for d in client.devices()]
    for name in dict.fromkeys(names):
        if name not in known:
            err.print(styled("warning:", "yellow", _unknown_device(name, known)))


def _unknown_device(name: str, known: list[str]) -> str:
    devices = ", ".join(known[:10]) + (" ..." if len(known) > 10 else "") if known else "none yet"
    return (
        f"the collector knows no device {name!r} (it knows: {devices}); the campaign waits until an agent of "
        "that device enrolls (see `latbench devices`)"
    )


@campaign_app.command("list")
def campaign_list(as_json: opt.AsJson = False, collector: opt.Collector = None, token: opt.AdminToken = None) -> None:
    """Every campaign with its overall progress."""
    with CollectorClient(collector, token) as client:
        campaigns = client.campaigns()
    if as_json:
        print(json.dumps([c.model_dump(mode="json") for c in campaigns]))
        return
    table = Table("id", "name", "space", "runtime", "samples", "priority", "state", "done", "created")
    for c in campaigns:
        done = sum(d.done for d in c.devices)
        total = sum(d.total for d in c.devices)
        table.add_row(c.campaign_id, c.name or "", c.space, f"{c.runtime}/{c.provider}", str(c.samples),
                      str(c.priority), c.state, f"{done}/{total}", c.created_at.strftime("%Y-%m-%d %H:%M"))  # fmt: skip
    out.print(table)
