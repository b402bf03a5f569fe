"""``latbench search``: latency-constrained NAS with a transferred predictor, finalists verified by measurement."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from latbench.cli.console import err, out
from latbench.errors import LatbenchError


def search_command(
    model: Path = typer.Option(..., "--model", "-m", help="A transferred predictor (.pt)."),
    space: str = typer.Option(..., "--space", "-s", help="Search space; must be the model's."),
    max_latency_ms: float = typer.Option(..., "--max-latency-ms", help="Latency limit on the model's device."),
    objective: str = typer.Option("params", "--objective", help="What to maximise: params, flops or proxy."),
    proxy: str = typer.Option("nwot", "--proxy", help="Zero-cost proxy for --objective proxy."),
    method: str = typer.Option("evolution", "--method", help="evolution (aging evolution) or random."),
    budget: int = typer.Option(2000, "--budget", min=1, help="Architectures the predictor rates."),
    finalists: int = typer.Option(5, "--finalists", min=1, help="Best feasible architectures to report."),
    seed: int = typer.Option(0, "--seed", help="Search seed."),
    verify: str = typer.Option("local", "--verify", help="Measure finalists: local, campaign or none."),
    collector: str | None = typer.Option(None, "--collector", envvar="LATBENCH_COLLECTOR", help="Collector URL."),
    token: str | None = typer.Option(None, "--token", envvar="LATBENCH_ADMIN_TOKEN", help="Admin token (campaign)."),
    device: str | None = typer.Option(None, "--device", help="Collector device to verify on (default: the model's)."),
    threads: int = typer.Option(1, "--threads", "-t", min=1, help="Intra-op threads when measuring."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Find the best architectures under a latency limit by prediction, then measure what was picked."""
    from latbench import search as nas
    from latbench.predictor import Predictor
    from latbench.spaces import get_space

    if verify not in ("local", "campaign", "none"):
        raise typer.BadParameter("--verify must be local, campaign or none")
    predictor = Predictor.load(model)
    if get_space(space).name != predictor.space:
        raise LatbenchError(f"{model} predicts {predictor.space} architectures, not {space}")
    err.print(f"searching {predictor.space} for {predictor.target} under {max_latency_ms} ms ({method}, {budget})")
    result = nas.search(
        predictor.predict,
        space,
        max_latency_ms,
        objective_name=objective,
        proxy=proxy,
        method=method,
        budget=budget,
        finalists=finalists,
        seed=seed,
    )
    err.print(f"rated {result.queried} architectures in {result.seconds:.1f} s; {result.feasible} predicted feasible")
    if not result.finalists:
        raise LatbenchError(f"no architecture is predicted under {max_latency_ms} ms; raise the limit or the budget")
    archs = [c.arch for c in result.finalists]
    measured: dict[str, float] = {}
    if verify == "local":
        from latbench.search.measuring import measure_locally

        err.print(f"measuring {len(archs)} finalists on this machine")
        measured = measure_locally(space, archs, threads=threads)
    elif verify == "campaign":
        from latbench.search.measuring import measure_by_campaign

        if not collector:
            raise typer.BadParameter("--verify campaign needs --collector (or LATBENCH_COLLECTOR)")
        target = device or predictor.target
        err.print(f"measuring {len(archs)} finalists on {target} through {collector}")
        measured = measure_by_campaign(collector, token, space, archs, target, threads=threads)
    verified = nas.verify(result, measured)
    summary = nas.agreement(verified)
    if as_json:
        payload = {
            "space": result.space,
            "device": predictor.target,
            "max_latency_ms": max_latency_ms,
            "method": method,
            "objective": objective,
            "queried": result.queried,
            "feasible": result.feasible,
            "seconds": result.seconds,
            "finalists": [c.as_dict for c in result.finalists],
            "verified": [v.as_dict() for v in verified],
            **({"agreement": summary} if verified else {}),
        }
        out.print(json.dumps(payload, indent=2))
        return
    table = Table(title=f"finalists under {max_latency_ms} ms", title_justify="left")
    for col in ("architecture", objective, "predicted ms", "measured ms", "within"):
        table.add_column(col, justify="left" if col == "architecture" else "right")
    for c in result.finalists:
        m = measured.get(c.arch)
        table.add_row(
            c.arch,
            f"{c.score:.4g}",
            f"{c.latency_ms:.3f}",
            "-" if m is None else f"{m:.3f}",
            "-" if m is None else ("yes" if m <= max_latency_ms else "no"),
        )
    err.print(table)
    if verified:
        err.print(
            f"measured within the limit: {summary['within_limit']:.0%}; "
            f"median |predicted - measured| / measured: {summary['median_abs_rel_error']:.1%}"
        )
    for c in result.finalists:
        out.print(c.arch)
