"""``latbench dataset``: list, show, build, import, combine, export, plot and remove device latency datasets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from latbench import datasets, stability
from latbench.cli import options as opt
from latbench.cli.console import Table, err, out, styled
from latbench.datasets.cards import runtime_label

dataset_app = typer.Typer(
    help="Device latency datasets: built in, built from measurements, imported.", no_args_is_help=True
)

NAME = typer.Option(None, "--name", help="Registry name (default: from the file or campaign).")
PREFIX = typer.Option("", "--prefix", help="Prepended to every device name, to tell devices of two sources apart.")
LICENSE = typer.Option("", "--license", help="License of the data, recorded per device.")
FORCE = typer.Option(False, "--force", help="Replace a dataset of the same name.")
Devices = Annotated[list[str] | None, opt.device("Only this device (repeatable).")]


def _stored(ds: datasets.Dataset, force: bool) -> None:
    datasets.save(ds, overwrite=force)
    measured = sum(ds.measured(d) for d in ds.device_names)
    err.print(
        f"dataset {ds.name}: {ds.space}, {len(ds.devices)} device(s), {len(ds.archs)} architecture(s), "
        f"{measured} latencies"
    )
    out.print(ds.name)


@dataset_app.command("list")
def list_command(as_json: opt.AsJson = False) -> None:
    """Built-in and registry datasets."""
    found = datasets.list_datasets()
    if as_json:
        print(json.dumps([s.as_dict() for s in found]))
        return
    table = Table("name", "space", "devices", "archs", "kind")
    for s in found:
        table.add_row(s.name, s.space, str(len(s.devices)), str(s.n_archs), "built in" if s.builtin else s.kind)
    out.print(table)


def _percent(value: Any) -> str:
    return f"{value:.1%}" if isinstance(value, float) else ""


@dataset_app.command("show")
def show(name: str = typer.Argument(..., help="Dataset name."), as_json: opt.AsJson = False) -> None:
    """Devices, coverage, measurement setup, quality and provenance of a dataset."""
    card = datasets.describe(datasets.load(name))
    if as_json:
        print(json.dumps(card))
        return
    table = Table(
        "device",
        "measured",
        "coverage",
        "runtime",
        "batch",
        "threads",
        "median CV",
        "unstable",
        "source",
        title=f"{card['name']}: {card['space']}, {card['n_archs']} architectures",
    )
    for d in card["devices"]:
        q = d["quality"]
        table.add_row(
            d["name"],
            str(d["measured"]),
            _percent(d["coverage"]),
            runtime_label(d),
            str(d["batch"] or ""),
            str(d["threads"] or ""),
            str(q.get("median_cv") or ""),
            str(q.get("unstable", "")),
            d["source"],
        )
    out.print(table)
    for d in card["devices"]:
        if d["quality"].get("stability"):
            out.print(styled("warning:", "yellow", f"{d['name']}: {d['quality']['stability']}"))
    for key, value in card["provenance"].items():
        if isinstance(value, list):
            text = "; ".join(map(str, value))
        elif isinstance(value, dict):
            text = ", ".join(f"{k} {v}" for k, v in value.items())
        else:
            text = value
        if key == "notice":
            text = "the license notice, shipped in every export's card"
        out.print(f"{key}: {text}")
    out.print(f"content_sha256: {card['content_sha256']}")


@dataset_app.command("rm")
def rm(name: str = typer.Argument(..., help="Dataset name.")) -> None:
    """Remove a dataset from the registry (built-ins cannot be removed)."""
    datasets.remove(name)
    err.print(f"dataset {name} removed")


@dataset_app.command("build")
def build(
    campaigns: list[str] | None = typer.Option(
        None,
        "--campaign",
        "-c",
        help="Build from this collector campaign; repeat it to pool campaigns of one space, device by device.",
    ),
    from_results: Path | None = typer.Option(
        None, "--from-results", help="Build from a results file of `latbench measure` or `latbench results export`."
    ),
    name: str | None = NAME,
    device: Annotated[str | None, opt.device("Name of the device of single-device results.")] = None,
    prefix: str = PREFIX,
    license: str = LICENSE,
    force: bool = FORCE,
    include_unstable: opt.IncludeUnstable = False,
    collector: opt.Collector = None,
    token: opt.AdminToken = None,
) -> None:
    """Aggregate measurements into a dataset (stable results only by default); prints its name."""
    if from_results is not None and not campaigns:
        ds = datasets.build_from_results(
            from_results, name=name, device=device, prefix=prefix, license=license, include_unstable=include_unstable
        )
    elif campaigns and from_results is None:
        ids = list(dict.fromkeys(campaigns))
        err.print(f"reading the results of campaign{'s' if len(ids) > 1 else ''} {', '.join(ids)}")
        ds = datasets.build_from_campaign(
            ids,
            collector=collector,
            token=token,
            name=name,
            device=device,
            prefix=prefix,
            license=license,
            include_unstable=include_unstable,
        )
    else:
        raise typer.BadParameter("give --campaign ID (repeatable) or --from-results FILE (one of them)")
    _report_stability(ds)
    _stored(ds, force)


def _report_stability(ds: datasets.Dataset) -> None:
    """Each device's unstable results, how many the dataset left out, and how many it merged, on stderr."""
    for meta in ds.devices:
        text, left_out = meta.quality.get("stability"), meta.quality.get("unstable_left_out")
        if text:
            err.print(styled("warning:", "yellow", f"{meta.name}: {text}"))
        if left_out:
            err.print(f"{meta.name}: {stability.left_out(left_out)}")
        repeated = meta.quality.get("repeated")
        if repeated:
            err.print(
                f"{meta.name}: {repeated} architecture(s) measured more than once, each the median of its results"
            )


@dataset_app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="A CSV (.csv, .csv.gz), parquet or HW-NAS-Bench .pickle file.")],
    space: opt.Space,
    name: str | None = NAME,
    arch_column: str = typer.Option("arch", "--arch-column", help="Column of architecture strings."),
    device_column: str = typer.Option("device", "--device-column", help="Column of device names."),
    latency_column: str | None = typer.Option(
        None, "--latency-column", help="Latency column (default: latency_ms, latency_s, latency_us or latency)."
    ),
    device: Annotated[str | None, opt.device("The device of a file without a device column.")] = None,
    unit: str | None = typer.Option(None, "--unit", help="Unit of the latency column: ms, s or us."),
    prefix: str = PREFIX,
    license: str = LICENSE,
    image_dataset: str = typer.Option("cifar10", "--hwnas-dataset", help="HW-NAS-Bench pickle: image dataset."),
    force: bool = FORCE,
    wide: bool = typer.Option(
        False, "--wide", help="Read a wide table (a row per architecture, a column per device) where not detected."
    ),
) -> None:
    """Import a public or third-party latency table; prints the dataset's name."""
    if unit is not None and unit not in datasets.UNITS:
        raise typer.BadParameter(f"--unit must be one of: {', '.join(datasets.UNITS)}")
    if file.suffix in (".pickle", ".pkl"):
        ds = datasets.import_hwnasbench(file, space, image_dataset=image_dataset, name=name, prefix=prefix)
    else:
        ds = datasets.import_table(
            file,
            space,
            name=name,
            arch_column=arch_column,
            device_column=device_column,
            latency_column=latency_column,
            device=device,
            unit=unit,
            prefix=prefix,
            license=license,
            wide=wide,
        )
        duplicates = ds.provenance.get("identical_duplicates")
        if duplicates:
            err.print(f"{duplicates} duplicate row(s) with identical values merged")
    _stored(ds, force)


@dataset_app.command("combine")
def combine_command(
    names: list[str] = typer.Argument(..., help="Datasets to put side by side (same space)."),
    name: str = typer.Option(..., "--name", help="Name of the combined dataset."),
    force: bool = FORCE,
) -> None:
    """Store several datasets' devices as one dataset; prints its name."""
    _stored(datasets.combine([datasets.load(n) for n in names], name=name), force)


@dataset_app.command("export")
def export_command(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv, parquet or help.")],
    out_path: Annotated[Path, opt.out("File (.csv, .csv.gz, .parquet) or new directory (help).")],
    devices: Devices = None,
    wide: bool = typer.Option(False, "--wide", help="csv, parquet: a row per architecture, a column per device."),
) -> None:
    """Write a dataset with its card for other tools; prints the output path."""
    if fmt not in datasets.FORMATS:
        raise typer.BadParameter(f"--format must be one of: {', '.join(datasets.FORMATS)}")
    ds = datasets.load(name)
    written = datasets.export(ds.select(devices) if devices else ds, fmt, out_path, wide=wide)
    out.print(str(written))


@dataset_app.command("plot")
def plot_command(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    out_path: Annotated[Path, opt.out("PNG file to write.")],
    devices: Devices = None,
) -> None:
    """Draw the device correlation heatmap and latency distributions; prints the PNG's path."""
    written = datasets.plot(datasets.load(name), out_path, devices)
    out.print(str(written))
