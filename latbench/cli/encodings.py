"""``latbench predictor encodings``: compute and inspect the zero-cost-proxy and arch2vec tables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from latbench.cli import options as opt
from latbench.cli.console import Table, err, out
from latbench.cli.jsonout import dumps
from latbench.cli.progress import counting_bars
from latbench.predictor.encodings.errors import ZcpInterrupted
from latbench.predictor.encodings.store import check, load
from latbench.predictor.encodings.summary import describe
from latbench.predictor.errors import ArchsFileError

encodings_app = typer.Typer(
    help="Supplementary architecture encodings: zero-cost proxies and arch2vec embeddings.", no_args_is_help=True
)


@encodings_app.command("compute")
def compute_command(
    space: opt.Space,
    kind: Annotated[str, typer.Option("--kind", "-k", help="zcp (zero-cost proxies) or arch2vec.")],
    out_dir: Annotated[Path | None, opt.out("Directory to write into (default: $LATBENCH_HOME/encodings).")] = None,
    seed: opt.Seed = 0,
    archs_file: Annotated[
        Path | None,
        typer.Option(
            "--archs-file",
            help="Architectures to cover, one a line, # comments skipped (default: the space's list). Without --out "
            "they extend the table latbench loads (zcp only); with --out the file holds them alone.",
        ),
    ] = None,
) -> None:
    """Recompute a table for every architecture of the shipped list (or of --archs-file); interrupted zcp runs
    resume. Prints the path of the table that covers them."""
    from latbench.predictor.archfile import read_archs
    from latbench.predictor.encodings.compute import compute

    space, kind = check(space, kind)
    archs = None
    if archs_file is not None:
        try:
            archs = read_archs(archs_file, space)
        except ArchsFileError as exc:
            raise typer.BadParameter(str(exc), param_hint="--archs-file") from None
    try:
        with counting_bars() as bars:
            path = compute(space, kind, out_dir, seed=seed, progress=bars, archs=archs)
    except KeyboardInterrupt as exc:
        err.print(_interrupted(exc))
        raise typer.Exit(130) from None
    err.print(f"{space} {kind} encodings: {len(load(space, kind, path).archs)} architectures in the table")
    out.print(str(path))


def _interrupted(exc: KeyboardInterrupt) -> str:
    """What Ctrl-C kept: a zcp run's finished rows, else nothing (arch2vec trains in one go)."""
    if isinstance(exc, ZcpInterrupted):
        return f"{exc}; run the same command to resume"
    return "interrupted: nothing new was saved"


@encodings_app.command("show")
def show_command(space: opt.Space, as_json: opt.AsJson = False) -> None:
    """Names, shapes, provenance and Spearman correlation with FLOPs of each table of a space."""
    info = describe(space)
    if as_json:
        print(dumps(info))
        return
    for kind, table in info.items():
        if not table["available"]:
            out.print(f"{kind}: not available ({table['error']})")
            continue
        meta = table["meta"]
        settings = ", ".join(f"{k}={meta[k]}" for k in sorted(meta) if k not in ("held_out",))
        out.print(f"{kind}: {table['shape'][0]} archs x {table['shape'][1]} features ({settings})")
        if "held_out" in meta:
            out.print(f"  held-out reconstruction: {meta['held_out']}")
        grid = Table("feature", "SRCC vs FLOPs")
        for name, value in table["srcc_vs_flops"].items():
            grid.add_row(name, f"{value:+.3f}")
        out.print(grid)
