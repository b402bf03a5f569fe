"""``latbench quickstart``: measure this machine, transfer the shipped predictor, judge it, write a report."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from latbench.agents.measure import TimingSettings
from latbench.cli.console import err, out

STEP_TEXT = {
    "plan": "choosing architectures",
    "measure": "measuring",
    "transfer": "transferring the predictor",
    "evaluate": "judging it on held-out architectures",
    "report": "writing the report",
}


def quickstart_command(
    directory: Path = typer.Option(
        Path("latbench-quickstart"), "--dir", "-d", help="Workspace: store, dataset, model, report (re-run resumes)."
    ),
    space: str = typer.Option("nb201", "--space", "-s", help="Search space with a shipped predictor (nb201)."),
    samples: int = typer.Option(20, "--samples", "-n", help="Architectures measured to transfer the predictor."),
    holdout: int = typer.Option(100, "--holdout", help="Further architectures measured only to judge it."),
    seed: int = typer.Option(0, "--seed", help="Sampling and training seed."),
    threads: int = typer.Option(1, "--threads", "-t", min=1, help="Intra-op threads (1 is the repeatable default)."),
    min_time: float = typer.Option(1.0, "--min-time", min=0.0, help="Seconds of timed runs per architecture."),
    min_runs: int = typer.Option(50, "--min-runs", min=1, help="Timed runs per architecture, at least."),
    warmup_time: float = typer.Option(0.5, "--warmup-time", min=0.0, help="Seconds of warm-up per architecture."),
    dataset: str | None = typer.Option(None, "--dataset-name", help="Registry name (default quickstart-SPACE)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """From nothing to a latency predictor for this machine; prints the report's path."""
    from latbench.quickstart import Hooks, quickstart

    settings = TimingSettings(min_time_s=min_time, min_runs=min_runs, warmup_time_s=warmup_time)
    bar = Progress(
        TextColumn("{task.description:<38}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=err,
    )
    tasks: dict[str, int] = {}

    def on_step(step: str) -> None:
        for name in tasks:
            task = bar.tasks[tasks[name]]
            bar.update(tasks[name], completed=task.total or 1, total=task.total or 1)
        if step in STEP_TEXT:
            tasks[step] = bar.add_task(STEP_TEXT[step], total=None)

    def on_measure(done: int, total: int) -> None:
        bar.update(tasks["measure"], completed=done, total=total)

    hooks = Hooks(on_step=on_step, on_measure=on_measure, on_message=lambda m: err.print(m))
    try:
        with bar:
            result = quickstart(
                directory,
                space=space,
                samples=samples,
                holdout=holdout,
                seed=seed,
                threads=threads,
                settings=settings,
                dataset_name=dataset,
                hooks=hooks,
            )
            on_step("done")
    except KeyboardInterrupt:
        err.print(f"interrupted: progress is kept in {directory}; run the same command to resume")
        raise typer.Exit(130) from None
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
