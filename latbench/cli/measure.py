"""``latbench measure``: time architectures of a search space, or model files, on this machine into a results file."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from latbench.agents.measure import TimingSettings
from latbench.cli.console import err, out
from latbench.local import Progress as RunProgress
from latbench.local import measure


def _bar() -> Progress:
    return Progress(
        TextColumn("{task.description:<9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[last]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )


def measure_command(
    space: str | None = typer.Option(None, "--space", "-s", help="Search space: nb201 or fbnet."),
    model: list[Path] | None = typer.Option(
        None, "--model", "-m", help="A model file to measure instead: ONNX or .tflite (repeatable)."
    ),
    input_shape: list[str] | None = typer.Option(
        None, "--input", help="A model input's shape, NAME:1x3x224x224, for dynamic dimensions (repeatable)."
    ),
    samples: int | None = typer.Option(None, "--samples", "-n", help="Measure this many seeded architectures."),
    seed: int = typer.Option(0, "--seed", help="Sampling seed."),
    arch: list[str] | None = typer.Option(None, "--arch", "-a", help="An architecture to measure (repeatable)."),
    connected_only: bool = typer.Option(False, "--connected-only", help="NB201: sample only connected cells."),
    runtime: str = typer.Option("onnxruntime", "--runtime", "-r", help="Inference runtime."),
    provider: str = typer.Option("cpu", "--provider", help="Runtime device: cpu, cuda or tensorrt."),
    batch: int = typer.Option(1, "--batch", "-b", min=1, help="Batch size."),
    threads: int = typer.Option(1, "--threads", "-t", min=1, help="Intra-op threads (1 is the repeatable default)."),
    resolution: int | None = typer.Option(None, "--resolution", min=1, help="Input height and width (default 32)."),
    classes: int | None = typer.Option(None, "--classes", min=1, help="Output classes (nb201 10, fbnet 100)."),
    min_runs: int = typer.Option(50, "--min-runs", min=1, help="Timed runs, at least."),
    min_time: float = typer.Option(1.0, "--min-time", min=0.0, help="Seconds of timed runs, at least."),
    max_time: float = typer.Option(30.0, "--max-time", min=0.001, help="Seconds of timed runs, at most."),
    warmup_runs: int = typer.Option(10, "--warmup-runs", min=0, help="Warm-up runs, at least."),
    warmup_time: float = typer.Option(0.5, "--warmup-time", min=0.0, help="Seconds of warm-up, at least."),
    cv_threshold: float = typer.Option(0.2, "--cv-threshold", min=0.0001, help="Re-measure above this CV."),
    drift_tolerance: float = typer.Option(
        0.15, "--drift-tolerance", min=0.0001, help="Re-measure when the reference model is off by more than this."
    ),
    attempts: int = typer.Option(3, "--attempts", min=1, help="Measurements per architecture while unstable."),
    no_reference: bool = typer.Option(False, "--no-reference", help="Skip the reference-model drift check."),
    out_path: Path = typer.Option(..., "--out", "-o", help="Results file (.csv or .parquet); re-run to resume."),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="Artifact cache (default ~/.cache/latbench)."),
) -> None:
    """Measure latency of search-space architectures or model files on this machine; prints the results file path."""
    try:
        settings = TimingSettings(
            warmup_runs=warmup_runs,
            warmup_time_s=warmup_time,
            min_runs=min_runs,
            min_time_s=min_time,
            max_time_s=max_time,
            cv_threshold=cv_threshold,
            drift_tolerance=drift_tolerance,
            max_attempts=attempts,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if model:
        if space is not None or arch or samples is not None or seed or connected_only:
            raise typer.BadParameter("give --model files or a --space to sample, not both")
        if batch != 1 or resolution is not None or classes is not None:
            raise typer.BadParameter("a model file's shapes are its own: give dynamic ones with --input")
    else:
        if space is None:
            raise typer.BadParameter("give --space (architectures) or --model (model files)")
        if input_shape:
            raise typer.BadParameter("--input is for --model files")
        if not arch and samples is None:
            raise typer.BadParameter("give --samples N or at least one --arch")
        if arch and samples is not None:
            raise typer.BadParameter("give --samples or --arch, not both")
    counts = {"new": 0, "unstable": 0}
    refused: list[str] = []
    with _bar() as bar:
        build = bar.add_task("export", total=None, last="")
        timing = bar.add_task("measure", total=None, last="", start=False)

        def on_build(done: int, total: int) -> None:
            bar.update(build, completed=done, total=total)

        def on_start(done: int, total: int) -> None:
            bar.update(build, visible=bar.tasks[build].total not in (None, 0))
            bar.start_task(timing)
            bar.update(timing, completed=done, total=total)

        def on_refused(path: str, line: str) -> None:
            refused.append(path)
            bar.console.print(f"[red]error:[/red] {escape(line)}", highlight=False)

        def on_result(row: dict[str, object]) -> None:
            counts["new"] += 1
            counts["unstable"] += not row["stable"]
            bar.update(timing, advance=1, last=f"{row['latency_ms']:.3f} ms")

        try:
            rows = measure(
                space,
                arch,
                models=model or None,
                inputs=input_shape or None,
                samples=samples,
                seed=seed,
                connected_only=connected_only,
                runtime=runtime,
                provider=provider,
                batch=batch,
                threads=threads,
                resolution=resolution,
                classes=classes,
                settings=settings,
                out=out_path,
                cache_dir=cache_dir,
                reference=not no_reference,
                progress=RunProgress(on_build=on_build, on_start=on_start, on_result=on_result, on_refused=on_refused),
            )
        except KeyboardInterrupt:
            bar.stop()
            err.print(f"interrupted: {counts['new']} new result(s) kept in {out_path}; run the same command to resume")
            raise typer.Exit(130) from None
    latencies = sorted(float(r["latency_ms"]) for r in rows)  # type: ignore[arg-type]
    if latencies:
        err.print(
            f"{len(rows)} {'model' if model else 'architecture'}(s), {counts['new']} measured now, "
            f"{counts['unstable']} flagged unstable; median latency {latencies[len(latencies) // 2]:.3f} ms "
            f"(min {latencies[0]:.3f}, max {latencies[-1]:.3f})"
        )
    if refused:
        err.print(f"{len(refused)} model(s) refused: {', '.join(refused)}", markup=False, highlight=False)
    out.print(str(out_path), markup=False)
    if refused:
        raise typer.Exit(1)
