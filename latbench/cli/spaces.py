"""``latbench spaces``: sample architectures and describe one, without building anything."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from latbench.cli import options as opt
from latbench.cli.console import out
from latbench.spaces import NB201, get_space

spaces_app = typer.Typer(help="Sample and inspect search-space architectures.", no_args_is_help=True)


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
    if isinstance(s, NB201):
        data |= {"arch_index": s.index(canonical), "connected": s.is_connected(canonical)}
    data |= {
        "macs": costs.macs,
        "mflops": round(costs.mflops, 3),
        "params": costs.params,
        "ops": [graph.vocabulary[o] for o in graph.ops],
        "adjacency": graph.adjacency.tolist(),
    }
    print(json.dumps(data))
