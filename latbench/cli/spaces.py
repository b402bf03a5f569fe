"""``latbench spaces``: sample architectures and describe one, without building anything."""

from __future__ import annotations

import json

import typer

from latbench.cli.console import out
from latbench.spaces import NB201, get_space

spaces_app = typer.Typer(help="Sample and inspect search-space architectures.", no_args_is_help=True)

SPACE = typer.Option(..., "--space", "-s", help="Search space: nb201 or fbnet.")


@spaces_app.command("sample")
def sample(
    space: str = SPACE,
    samples: int = typer.Option(10, "--samples", "-n", min=1, help="How many architectures."),
    seed: int = typer.Option(0, "--seed", help="Sampling seed; the same seed gives the same architectures."),
    connected_only: bool = typer.Option(False, "--connected-only", help="Skip cells with no input-output path."),
) -> None:
    """Print seeded architecture strings, one per line."""
    s = get_space(space)
    for arch in s.sample(samples, seed, connected_only=connected_only):
        out.print(arch)


@spaces_app.command("show")
def show(arch: str = typer.Argument(..., help="An architecture string."), space: str = SPACE) -> None:
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
