"""``latbench results show`` and ``export``: a result's figures and, if it was profiled, its time by operator type
(``latbench.resultview``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from latbench.cli import options as opt
from latbench.cli.console import Table, err, out
from latbench.client import CollectorClient
from latbench.resultfile import SUFFIXES, write_results
from latbench.resultview import OP_COLUMNS, ResultView, from_collector, from_file

results_app = typer.Typer(help="Measured results.", no_args_is_help=True)


def _number(value: object, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) and not isinstance(value, bool) else str(value or "")


def _measured(label: str, value: object, unit: str, digits: int = 3) -> str:
    """``load 1.234 ms``, or what the figure's absence means (a remote device's tools, an older result)."""
    return f"{label} {_number(value, digits)} {unit}" if _number(value) else f"{label} not recorded"


def _print(view: ResultView, top: int) -> None:
    figures = view.figures()
    out.print(
        f"{figures['arch']}  {figures['runtime']}/{figures['provider']}: latency {_number(figures['latency_ms'])} ms "
        f"(cv {_number(figures['cv'])}), {_measured('load', figures['load_ms'], 'ms')}, "
        f"{_measured('first run', figures['first_run_ms'], 'ms')}, "
        f"{_measured('peak memory', figures['peak_rss_mb'], 'MiB', 1)}"
        + ("" if figures["stable"] is not False else f"; unstable ({figures['flags']})"),
        markup=False,
    )
    op_table = view.op_table(top)
    if op_table is None:
        return
    title, rows = op_table
    table = Table(title=title, title_justify="left")
    for column in OP_COLUMNS:
        table.add_column(column, justify="left" if column == OP_COLUMNS[0] else "right")
    for row in rows:
        table.add_row(*row)
    out.print(table)


def show_command(
    source: Annotated[str, typer.Argument(help="A results file (.csv or .parquet), or a result id on a collector.")],
    arch: str | None = typer.Option(None, "--arch", help="Only the result of this architecture or model file."),
    top: int = typer.Option(10, "--top", min=1, help="Operator types to list per profiled result."),
    as_json: opt.AsJson = False,
    collector: opt.Collector = None,
    token: opt.AdminToken = None,
) -> None:
    """Show results with their load, first-run and memory figures, and the top operator types of profiled ones."""
    if Path(source).suffix in SUFFIXES:
        views = from_file(source, arch)
    else:
        if arch is not None:
            raise typer.BadParameter("--arch selects in a results file; a result id names one result")
        with CollectorClient(collector, token) as client:
            views = [from_collector(client, source)]
    if as_json:
        payload = [{**v.figures(), "op_types": [t.__dict__ for t in v.op_types(top)]} for v in views]
        out.print_json(json.dumps(payload))
        return
    for view in views:
        _print(view, top)
    profiled = sum(1 for v in views if v.profile is not None)
    err.print(f"{len(views)} result(s), {profiled} with a profile" + ("" if profiled else " (measure with --profile)"))


@results_app.command("export")
def results_export(
    campaign: Annotated[str, typer.Option("--campaign", "-c", help="Campaign id.")],
    out_path: Annotated[Path, opt.out("Output file: .csv or .parquet.")],
    collector: opt.Collector = None,
    token: opt.AdminToken = None,
) -> None:
    """Export a campaign's results with the columns of `latbench measure` plus device and agent."""
    if out_path.suffix not in (".csv", ".parquet"):
        raise typer.BadParameter("--out must end in .csv or .parquet")
    with CollectorClient(collector, token) as client:
        rows = list(client.iter_results(campaign))
    write_results(out_path, rows)
    err.print(f"{len(rows)} result(s) written")
    out.print(str(out_path))
