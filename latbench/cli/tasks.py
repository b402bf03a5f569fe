"""``latbench tasks``: the paper's named train/test device tasks, and hard splits generated from any datasets."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from latbench import datasets
from latbench.cli import options as opt
from latbench.cli.console import Table, err, out, styled
from latbench.datasets.protocol import SCORED_SAMPLES, pool_coverage

tasks_app = typer.Typer(help="Task suites: source (train) and target (test) devices.", no_args_is_help=True)

DATASETS = typer.Option(None, "--datasets", help="Comma-separated datasets to take devices from, in order.")


def _names(value: str | None) -> list[str] | None:
    return [n.strip() for n in value.split(",") if n.strip()] if value else None


def _warn(lines: list[str]) -> None:
    for line in lines:
        err.print(styled("warning:", "yellow", line))


def _as_dict(found: datasets.Availability) -> dict[str, object]:
    task = found.task
    return {
        "name": task.name,
        "space": task.space,
        "train": list(task.train),
        "test": list(task.test),
        "ready": found.ready,
        "found": found.found,
        "missing": list(found.missing),
        "explain": "" if found.ready else found.explain(),
    }


@tasks_app.command("list")
def list_command(dataset_names: str | None = DATASETS, as_json: opt.AsJson = False) -> None:
    """The paper's tasks and whether the datasets at hand hold their devices."""
    found = [datasets.availability(t, _names(dataset_names)) for t in datasets.TASKS.values()]
    if as_json:
        print(json.dumps([_as_dict(f) for f in found]))
        return
    table = Table("task", "space", "train", "test", "status")
    for f in found:
        missing = "; ".join(f"{len(devices)} from {source}" for source, devices in f.sources().items())
        status = "ready" if f.ready else f"missing {missing}"
        table.add_row(f.task.name, f.task.space, str(len(f.task.train)), str(len(f.task.test)), status)
    out.print(table)


@tasks_app.command("show")
def show(
    name: str = typer.Argument(..., help="Task name, such as ND or F3."),
    dataset_names: str | None = DATASETS,
    as_json: opt.AsJson = False,
) -> None:
    """A task's devices and the dataset each comes from; missing devices say where to get them."""
    found = datasets.availability(datasets.get_task(name), _names(dataset_names))
    if as_json:
        print(json.dumps(_as_dict(found)))
        return
    for role, devices in (("train", found.task.train), ("test", found.task.test)):
        for device in devices:
            print(f"{role}\t{device}\t{found.found.get(device, 'MISSING')}")
    if not found.ready:
        err.print(found.explain())


@tasks_app.command("generate")
def generate(
    space: opt.Space,
    train: Annotated[int, typer.Option("--train", min=1, help="Train (source) devices.")],
    test: Annotated[int, typer.Option("--test", min=1, help="Test (target) devices.")],
    dataset_names: str | None = typer.Option(
        None, "--datasets", help="Comma-separated datasets whose devices to split (default: the built-in one)."
    ),
    seed: Annotated[int, typer.Option("--seed", help="Kernighan-Lin seed; the same seed gives the same split.")] = 0,
    as_json: opt.AsJson = False,
) -> None:
    """Generate a hard split: train and test devices as unlike as possible (the paper's automatic tasks)."""
    split = datasets.generate_split(space, train, test, seed, _names(dataset_names))
    _warn(pool_coverage(space, _names(dataset_names)).warnings())
    if as_json:
        print(json.dumps(split.as_dict()))
        return
    out.print(f"train: {' '.join(split.train)}")
    out.print(f"test: {' '.join(split.test)}")
    err.print(
        f"mean SRCC within train {split.srcc_within_train}, within test {split.srcc_within_test}, across "
        f"{split.srcc_across} ({split.n_archs} shared architectures, seed {split.seed})"
    )


@tasks_app.command("splits")
def splits(
    space: opt.Space,
    part: Annotated[
        str | None, typer.Option("--part", help="Only the dev splits (to choose methods on) or the report splits.")
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", help="Which devices are dev targets; the same seed, the same splits.")
    ] = 0,
    hard: Annotated[int, typer.Option("--hard", min=0, help="Hard splits to generate (each gives up to two).")] = 4,
    dataset_names: str | None = typer.Option(
        None, "--datasets", help="Comma-separated datasets whose devices to split (default: the built-in one)."
    ),
    extra: Annotated[
        list[str] | None,
        typer.Option("--extra-dataset", help="A dataset of the same space whose devices join the pool (repeatable)."),
    ] = None,
    samples: Annotated[
        int,
        opt.samples(
            "Samples each split's targets will be transferred from: a target that measured no more is warned about."
        ),
    ] = SCORED_SAMPLES,
    as_json: opt.AsJson = False,
) -> None:
    """The development protocol's splits: hard and leave-one-device-family-out, dealt into dev and report."""
    found = datasets.protocol_splits(space, part, seed, hard, _names(dataset_names), extra or ())
    coverage = pool_coverage(space, _names(dataset_names), extra or ())
    if hard:
        err.print(f"the hard splits correlate {coverage.devices} devices over the {coverage.shared:,} architectures "
                  "every one of them measured")  # fmt: skip
    _warn(coverage.warnings((d for s in found for d in s.test), samples))
    if as_json:
        print(json.dumps([s.as_dict() for s in found]))
        return
    table = Table("split", "part", "kind", "held out", "train", "test")
    for s in found:
        table.add_row(s.name, s.part, s.kind, s.family or "-", " ".join(s.train), " ".join(s.test))
    out.print(table)
