"""``latbench quickstart``: measure this machine, transfer the shipped predictor, judge it, write a report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from latbench import stability
from latbench.agents.measure import TimingSettings
from latbench.cli import options as opt
from latbench.cli.console import Table, err, out, styled
from latbench.cli.progress import ProgressBars

STEP_TEXT = {
    "plan": "choosing architectures",
    "measure": "measuring",
    "transfer": "transferring the predictor",
    "evaluate": "judging it on held-out architectures",
    "report": "writing the report",
}


def quickstart_command(
    directory: Path = typer.Option(
        Path("latbench-quickstart"), "--dir", help="Workspace: store, dataset, model, report (re-run resumes)."
    ),
    space: opt.Space = "nb201",
    samples: Annotated[int, opt.samples("Architectures measured to transfer the predictor.", min=None)] = 20,
    holdout: int | None = typer.Option(
        None, "--holdout", help="Further architectures measured only to judge it \\[default: 100; ofa-mbv3: 30]."
    ),
    seed: opt.Seed = 0,
    threads: opt.Threads = 1,
    min_time: float | None = typer.Option(
        None, "--min-time", min=0.0, help="Seconds of timed runs per architecture \\[default: 1.0; ofa-mbv3: 0.5]."
    ),
    min_runs: int | None = typer.Option(
        None, "--min-runs", min=1, help="Timed runs per architecture, at least \\[default: 50; ofa-mbv3: 20]."
    ),
    warmup_time: float | None = typer.Option(
        None, "--warmup-time", min=0.0, help="Seconds of warm-up per architecture \\[default: 0.5; ofa-mbv3: 0.3]."
    ),
    dataset: str | None = typer.Option(None, "--dataset-name", help="Registry name (default quickstart-SPACE)."),
    wait_idle: bool = typer.Option(
        True, "--wait-idle/--no-wait-idle", help="Before each timing, wait while other programs keep the CPU busy."
    ),
    include_unstable: opt.IncludeUnstable = False,
    as_json: opt.AsJson = False,
) -> None:
    """From nothing to a latency predictor for this machine; prints the report's path."""
    from latbench.quickstart import defaults, quickstart

    d = defaults(space)
    settings = TimingSettings(
        min_time_s=d.min_time_s if min_time is None else min_time,
        min_runs=d.min_runs if min_runs is None else min_runs,
        warmup_time_s=d.warmup_time_s if warmup_time is None else warmup_time,
    )
    bars = ProgressBars(
        TextColumn("{task.description:<38}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        labels=STEP_TEXT,
    )
    try:
        with bars:
            result = quickstart(
                directory,
                space=space,
                samples=samples,
                holdout=d.holdout if holdout is None else holdout,
                seed=seed,
                threads=threads,
                settings=settings,
                dataset_name=dataset,
                progress=bars,
                wait_idle=wait_idle,
                include_unstable=include_unstable,
            )
            bars.finish()
    except KeyboardInterrupt:
        err.print(f"interrupted: progress is kept in {directory}; run the same command to resume")
        raise typer.Exit(130) from None
    if result.stability:
        err.print(styled("warning:", "yellow", result.stability))
    if result.left_out:
        err.print(f"the transfer and the evaluation {stability.left_out(result.left_out)}")
    e = result.evaluation
    table = Table(title=f"SRCC on {e.holdout} held-out architectures ({result.device})", title_justify="left")
    table.add_column("ranking by")
    table.add_column("SRCC", justify="right")
    table.add_row("transferred predictor", f"{e.predictor_srcc:.3f}")
    table.add_row("FLOPs", f"{e.flops_srcc:.3f}")
    table.add_row(f"best public device ({e.best_public_device})", f"{e.best_public_srcc:.3f}")
    err.print(table)
    err.print("time per step: " + ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items()))
    for what, where in result.outputs.items():
        err.print(f"{what:>16}: {where}")
    if as_json:
        out.print(json.dumps(result.as_dict(), indent=2))
    else:
        out.print(result.outputs["report"])
