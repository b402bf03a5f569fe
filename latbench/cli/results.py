"""``latbench results show`` and ``export``: a result's figures and, if it was profiled, its time by operator type
(``latbench.resultview``)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

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
        out.print_json(json.dumps([v.as_json(top) for v in views]))
        return
    for view in views:
        _print(view, top)
    profiled = sum(1 for v in views if v.profile is not None)
    err.print(f"{len(views)} result(s), {profiled} with a profile" + ("" if profiled else " (measure with --profile)"))


JSON_SUFFIXES = (".json", ".ndjson")
"""A JSON array, or one JSON object a line; a row's profile stays inline in both."""


def _write_json(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` to ``path`` as its suffix says (``JSON_SUFFIXES``), replacing it atomically."""
    lines = [rows] if path.suffix == ".json" else rows
    text = "".join(json.dumps(line) + "\n" for line in lines)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@results_app.command("export")
def results_export(
    campaign: Annotated[str, typer.Option("--campaign", "-c", help="Campaign id.")],
    out_path: Annotated[
        Path, opt.out("Output file: .csv, .parquet, .json (an array) or .ndjson; - for NDJSON on stdout.")
    ],
    device: list[str] | None = typer.Option(None, "--device", "-d", help="Only results of this device (repeatable)."),
    stable_only: bool = typer.Option(False, "--stable-only", help="Only results the stability checks accepted."),
    collector: opt.Collector = None,
    token: opt.AdminToken = None,
) -> None:
    """Export a campaign's results with the columns of `latbench measure` plus device, agent and result id."""
    to_stdout = str(out_path) == "-"
    if not to_stdout and out_path.suffix not in (*SUFFIXES, *JSON_SUFFIXES):
        raise typer.BadParameter("--out must end in .csv, .parquet, .json or .ndjson, or be - for NDJSON on stdout")
    written = 0
    rows: list[dict[str, Any]] = []
    with CollectorClient(collector, token) as client:
        for row in client.iter_results(campaign):
            if (device and row.get("device") not in device) or (stable_only and not row.get("stable")):
                continue
            written += 1
            if to_stdout:
                sys.stdout.write(json.dumps(row) + "\n")
            else:
                rows.append(row)
    if to_stdout:
        sys.stdout.flush()
    elif out_path.suffix in JSON_SUFFIXES:
        _write_json(out_path, rows)
    else:
        write_results(out_path, rows)
    err.print(f"{written} result(s) written")
    if not to_stdout:
        out.print(str(out_path))
