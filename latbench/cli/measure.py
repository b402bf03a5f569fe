"""``latbench measure``: time architectures of a search space, or model files, on this machine (or on a remote
device, ``--remote``) into a results file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from latbench import profiles, stability
from latbench.agents.quiet import QuietPolicy, pin_to_core
from latbench.agents.remote import open_runner
from latbench.benches import check_remote
from latbench.cli import options as opt
from latbench.cli.console import err, out, styled
from latbench.cli.progress import ProgressBars
from latbench.errors import LatbenchError
from latbench.local import measure

WAIT_IDLE_ADVICE = "Re-run when it is idle, or use --wait-idle."
"""The advice under unstable results measured without ``--wait-idle``, which this command has."""


def _interrupted(new: int, path: Path) -> str:
    """What Ctrl-C kept: the results in ``path`` so far, or nothing, when no result reached it."""
    if path.exists():
        return f"interrupted: {new} new result(s) kept in {path}; run the same command to resume"
    return f"interrupted before any result was written; {path} was not created"


def _spread(rows: list[dict[str, object]]) -> str:
    """The rows' latencies in words: each is one network's median, so several give a range across networks."""
    latencies = sorted(float(r["latency_ms"]) for r in rows)  # type: ignore[arg-type]
    if len(latencies) == 1:
        return f"latency {latencies[0]:.3f} ms (median of its runs)"
    return f"latencies (each a median of its runs) from {latencies[0]:.3f} to {latencies[-1]:.3f} ms"


def _bars() -> ProgressBars:
    return ProgressBars(
        TextColumn("{task.description:<9}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[last]}", markup=False),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        hide_empty=True,
        last="",
    )


def measure_command(
    out_path: Annotated[Path, opt.out("Results file (.csv or .parquet); re-run to resume.")],
    space: Annotated[str | None, typer.Option("--space", "-s", help="Search space (see latbench spaces list).")] = None,
    model: Annotated[
        list[Path] | None,
        opt.model("A model file to measure, ONNX or LiteRT, or a directory of .onnx/.tflite files (repeatable)."),
    ] = None,
    input_shape: list[str] | None = typer.Option(
        None, "--input", help="A model input's shape, NAME:1x3x224x224, for dynamic dimensions (repeatable)."
    ),
    input_data: Path | None = typer.Option(
        None,
        "--input-data",
        help="An .npz of arrays by input name to time model files on (default: seeded random values).",
    ),
    samples: Annotated[int | None, opt.samples("Measure this many seeded architectures.")] = None,
    seed: opt.Seed = 0,
    arch: Annotated[list[str] | None, opt.arch("An architecture to measure (repeatable).")] = None,
    connected_only: bool = typer.Option(False, "--connected-only", help="NB201: sample only connected cells."),
    runtime: Annotated[str, opt.runtime("Inference runtime.")] = "onnxruntime",
    provider: str = typer.Option(
        "cpu", "--provider", help="Execution provider: cpu, cuda, ... (`latbench runtimes` lists them)."
    ),
    precision: str = typer.Option(
        "fp32", "--precision", help="Numeric precision of architectures: fp32, or int8 (statically quantised)."
    ),
    batch: int = typer.Option(1, "--batch", "-b", min=1, help="Batch size."),
    threads: opt.Threads = 1,
    resolution: int | None = typer.Option(None, "--resolution", min=1, help="Input height and width (default 32)."),
    classes: opt.Classes = None,
    min_runs: opt.MinRuns = opt.TIMING.min_runs,
    min_time: opt.MinTime = opt.TIMING.min_time_s,
    max_time: opt.MaxTime = opt.TIMING.max_time_s,
    warmup_runs: opt.WarmupRuns = opt.TIMING.warmup_runs,
    warmup_time: opt.WarmupTime = opt.TIMING.warmup_time_s,
    cv_threshold: opt.CvThreshold = opt.TIMING.cv_threshold,
    drift_tolerance: opt.DriftTolerance = opt.TIMING.drift_tolerance,
    attempts: opt.Attempts = opt.TIMING.max_attempts,
    no_reference: bool = typer.Option(False, "--no-reference", help="Skip the reference-model drift check."),
    wait_idle: bool = typer.Option(
        False, "--wait-idle/--no-wait-idle", help="Before each timing, wait while other programs keep the CPU busy."
    ),
    wait_idle_max: float = typer.Option(
        60.0,
        "--wait-idle-max",
        min=0.0,
        help="Seconds to wait for idle before each attempt, at most (up to --attempts waits per model).",
    ),
    pin_core: int | None = typer.Option(None, "--pin-core", min=0, help="Run the timed work on this CPU core only."),
    profile: opt.Profile = False,
    profile_runs: opt.ProfileRuns = profiles.DEFAULT_RUNS,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the run's rows (kept and new) as one JSON array on stdout.")
    ] = False,
    cache_dir: Path | None = typer.Option(
        None,
        "--cache-dir",
        help="Where built networks are kept (default: $LATBENCH_CACHE_DIR, else ~/.cache/latbench/artifacts).",
    ),
    remote: opt.Remote = None,
    remote_tool: opt.RemoteTool = "stub",
    remote_command: opt.RemoteCommand = None,
    cpu_mask: opt.CpuMask = None,
    key: opt.SshKey = None,
    known_hosts: opt.KnownHosts = None,
    host_key_fingerprint: opt.HostKeyFingerprint = None,
    device_wait: opt.DeviceWait = opt.DEVICE_WAIT_S,
) -> None:
    """Measure latency of search-space architectures or model files on this machine, or on a --remote device
    (built here, timed there); prints the results file path (nothing when no result was kept), or with --json the
    rows."""
    settings = opt.timing(
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
    if model:
        if space is not None or arch or samples is not None or seed or connected_only:
            raise typer.BadParameter("give --model files or a --space to sample, not both")
        if batch != 1 or resolution is not None or classes is not None:
            raise typer.BadParameter("a model file's shapes are its own: give dynamic ones with --input")
        if precision != "fp32":
            raise typer.BadParameter("a model file is timed at its own precision: --precision is for --space")
    else:
        if space is None:
            raise typer.BadParameter("give --space (architectures) or --model (model files)")
        if input_shape or input_data is not None:
            raise typer.BadParameter("--input and --input-data are for --model files")
        if not arch and samples is None:
            raise typer.BadParameter("give --samples N or at least one --arch")
        if arch and samples is not None:
            raise typer.BadParameter("give --samples or --arch, not both")
    quiet = QuietPolicy(max_wait_s=wait_idle_max) if wait_idle else None
    runner = None
    if remote:
        if pin_core is not None:
            raise LatbenchError("--pin-core pins this machine's process, not the remote device's: use --cpu-mask HEX")
        check_remote(settings, quiet, input_data)  # before connecting
        runner = open_runner(
            remote, tool=remote_tool, command=remote_command, cpu_mask=cpu_mask, key_file=key,
            known_hosts=known_hosts, host_key_fingerprint=host_key_fingerprint, wait_s=device_wait,
        )  # fmt: skip
    elif remote_tool != "stub" or remote_command or cpu_mask or key or known_hosts or host_key_fingerprint:
        raise typer.BadParameter(
            "--remote-tool, --remote-command, --cpu-mask, --key, --known-hosts and --host-key-fingerprint are for "
            "--remote"
        )
    elif pin_core is not None:
        pin_to_core(pin_core)
    try:
        counts = {"new": 0, "unstable": 0}
        refused: list[str] = []
        with _bars() as bars:

            def on_refused(path: str, line: str) -> None:
                refused.append(path)
                bars.rich.console.print(styled("error:", "red", line))

            def on_result(row: dict[str, object]) -> None:
                counts["new"] += 1
                counts["unstable"] += not row["stable"]
                bars.annotate("measure", last=f"{row['latency_ms']:.3f} ms")

            try:
                rows = measure(
                    space,
                    arch,
                    models=model or None,
                    inputs=input_shape or None,
                    input_data=input_data,
                    samples=samples,
                    seed=seed,
                    connected_only=connected_only,
                    runtime=runtime,
                    provider=provider,
                    precision=precision,
                    batch=batch,
                    threads=threads,
                    resolution=resolution,
                    classes=classes,
                    settings=settings,
                    out=out_path,
                    cache_dir=cache_dir,
                    reference=not no_reference,
                    progress=bars,
                    on_result=on_result,
                    on_refused=on_refused,
                    quiet=quiet,
                    remote=runner,
                )
            except KeyboardInterrupt:
                bars.rich.stop()
                err.print(_interrupted(counts["new"], out_path))
                raise typer.Exit(130) from None
    finally:
        if runner is not None:
            runner.close()  # the stub and the work dir leave the device, after Ctrl-C too
    if rows:
        where = f" on {remote}" if remote else ""
        err.print(
            f"{len(rows)} {'model' if model else 'architecture'}(s){where}, {counts['new']} measured now, "
            f"{counts['unstable']} flagged unstable; {_spread(rows)}"
        )
    warning = stability.summary(rows, stability.ADVICE if wait_idle or remote else WAIT_IDLE_ADVICE)
    if warning:
        err.print(styled("warning:", "yellow", warning))
    if refused:
        err.print(f"{len(refused)} model(s) refused: {', '.join(refused)}")
    if as_json:
        out.print_json(json.dumps(rows, default=lambda v: v.item() if hasattr(v, "item") else str(v)))
    elif rows:
        out.print(str(out_path))
    if refused:
        raise typer.Exit(1)
