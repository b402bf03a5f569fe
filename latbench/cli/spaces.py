"""``latbench spaces``: list the installed spaces, sample architectures and describe one, without building anything."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer

from latbench.cli import options as opt
from latbench.cli.console import Table, err, out, styled
from latbench.spaces import get_space, shadowed, space_names, space_status

spaces_app = typer.Typer(help="Sample and inspect search-space architectures.", no_args_is_help=True)


@spaces_app.command("list")
def list_spaces(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List the installed spaces (entry-point group ``latbench.spaces``): where from, genes, resolution, builder."""
    statuses = [space_status(name) for name in space_names()]
    for reg in shadowed():
        err.print(styled("warning:", "yellow", f"{reg.origin} registers search space {reg.name!r} ({reg.target}), "
                         "a name already taken; it is not used: give the space another name"))  # fmt: skip
    if as_json:
        print(json.dumps([asdict(s) for s in statuses], indent=2))
        return
    table = Table("space", "from", "genes", "resolution", "builder", "not available")
    for s in statuses:
        table.add_row(
            s.name,
            s.origin,
            str(s.genes) if s.loaded else "-",
            str(s.default_resolution) if s.loaded else "-",
            "yes" if s.builder_available else "no",
            "; ".join(s.reasons),
        )
    out.print(table)


@spaces_app.command("sample")
def sample(
    space: opt.Space,
    samples: Annotated[int, opt.samples("How many architectures.")] = 10,
    seed: opt.Seed = 0,
    connected_only: bool = typer.Option(False, "--connected-only", help="Skip cells with no input-output path."),
) -> None:
    """Print seeded architecture strings, one per line."""
    s = get_space(space)
    for arch in s.sample(samples, seed, connected_only=connected_only):
        out.print(arch)


@spaces_app.command("show")
def show(arch: Annotated[str, typer.Argument(help="An architecture string.")], space: opt.Space) -> None:
    """Print an architecture's canonical form, index, costs and graph encoding as JSON."""
    s = get_space(space)
    canonical = s.canonical(arch)
    costs = s.costs(canonical)
    graph = s.encode(canonical)
    data: dict[str, object] = {"space": s.name, "arch": canonical}
    data |= s.details(canonical)
    data |= {
        "macs": costs.macs,
        "mflops": round(costs.mflops, 3),
        "params": costs.params,
        "ops": [graph.vocabulary[o] for o in graph.ops],
        "adjacency": graph.adjacency.tolist(),
    }
    print(json.dumps(data))
