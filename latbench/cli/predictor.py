"""``latbench predictor`` (pretrain, transfer, eval, suggest) and ``latbench predict``: thin layers over
``latbench.predictor``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer
from rich.table import Table

from latbench.cli.console import err, out
from latbench.cli.encodings import encodings_app

predictor_app = typer.Typer(
    help="Latency predictors: pretrain on source devices, transfer to a new device, evaluate.", no_args_is_help=True
)
predictor_app.add_typer(encodings_app, name="encodings")

SPACE = typer.Option(..., "--space", "-s", help="Search space: nb201 or fbnet.")
METHOD_HELP = (
    "Method: latbench (default ensemble), nasflat, help, multipredict, flops, params, ridge, nnls, cost-ridge."
)


def _names(value: str | None) -> list[str] | None:
    return [n.strip() for n in value.split(",") if n.strip()] if value else None


@predictor_app.command("pretrain")
def pretrain_command(
    space: str = SPACE,
    devices: str = typer.Option(..., "--devices", help="Comma-separated source devices."),
    dataset_names: str | None = typer.Option(None, "--datasets", help="Datasets to find them in, in order."),
    samples_per_device: int = typer.Option(300, "--samples-per-device", min=2, help="Training archs per device."),
    epochs: int = typer.Option(15, "--epochs", min=1, help="Pretraining epochs."),
    method: str = typer.Option("latbench", "--method", help=METHOD_HELP),
    seed: int = typer.Option(0, "--seed"),
    out_path: Path = typer.Option(..., "--out", "-o", help="Model file to write (.pt)."),
) -> None:
    """Pretrain a predictor on source devices; prints the model file's path."""
    from latbench import predictor

    settings = predictor.TrainingSettings(samples_per_device=samples_per_device, epochs=epochs)
    names = _names(devices) or []
    err.print(f"pretraining {method} on {len(names)} {space} device(s)...")
    model = predictor.pretrain(space, names, _names(dataset_names), method, settings, seed)
    out.print(str(model.save(out_path)), markup=False)


@predictor_app.command("transfer")
def transfer_command(
    model_path: Path = typer.Option(..., "--model", "-m", help="Pretrained model file (or 'shipped:nb201')."),
    device: str = typer.Option(..., "--device", "-d", help="Target device name."),
    dataset: str | None = typer.Option(None, "--dataset", help="Dataset holding the device's measurements."),
    results: Path | None = typer.Option(None, "--results", help="Results file of `latbench measure`."),
    samples: int = typer.Option(20, "--samples", "-n", min=3, help="Measurements to use (from --dataset)."),
    sampler: str = typer.Option("random", "--sampler", help="How --dataset samples are picked: random, encoding."),
    method: str | None = typer.Option(None, "--method", help="Method (default: the model's). " + METHOD_HELP),
    seed: int = typer.Option(0, "--seed"),
    folds: int = typer.Option(
        5, "--folds", min=0, help="Transfers that cross-validate this one, for search's error margin (0: none)."
    ),
    out_path: Path = typer.Option(..., "--out", "-o", help="Model file to write (.pt)."),
) -> None:
    """Transfer a pretrained predictor to a device from a few measurements; prints the model file's path.

    The file also keeps the transfer's out-of-fold errors (each fold of the samples predicted by a transfer from
    the others), from which `latbench search --confirm` sizes its first error margin."""
    from latbench import datasets, predictor
    from latbench.predictor.samplers import sample_indices

    if (dataset is None) == (results is None):
        raise typer.BadParameter("give exactly one of --dataset and --results")
    pre = _load(model_path)
    if results is not None:
        ds = datasets.build_from_results(results, device=device)
        if device not in ds.device_names:
            raise predictor.UnknownDevice(f"{results} has no device {device!r}; it has: {', '.join(ds.device_names)}")
        latency = ds.vector(device)
        pick = np.flatnonzero(~np.isnan(latency))
    else:
        ds = datasets.load(dataset)  # type: ignore[arg-type]
        if device not in ds.device_names:
            raise predictor.UnknownDevice(
                f"dataset {dataset!r} has no device {device!r}; it has: {', '.join(ds.device_names)}"
            )
        latency = ds.vector(device)
        measured = np.flatnonzero(~np.isnan(latency))
        archs = [ds.archs[i] for i in measured]
        pick = measured[sample_indices(ds.space, archs, min(samples, len(measured)), sampler, seed)]
    if ds.space != pre.space:
        raise predictor.PredictorError(f"the model predicts {pre.space} but the measurements are {ds.space}")
    err.print(f"transferring to {device} from {len(pick)} measured architecture(s)...")
    archs = [ds.archs[i] for i in pick]
    model = predictor.transfer_and_validate(pre, device, archs, latency[pick], folds, method, seed, err.print)
    from latbench.predictor import out_of_fold

    if folds and out_of_fold.recorded(model) is None:
        err.print("not cross-validating the transfer: that needs --folds 2 or more, each fold leaving 3 samples")
    out.print(str(model.save(out_path)), markup=False)


def _load(path: Path):  # type: ignore[no-untyped-def]
    from latbench import predictor

    if str(path).startswith("shipped:"):
        return predictor.load_pretrained(str(path).split(":", 1)[1])
    return predictor.Predictor.load(path)


def predict_command(
    model_path: Path = typer.Option(..., "--model", "-m", help="Transferred model file."),
    arch: list[str] = typer.Option(None, "--arch", "-a", help="Architecture (repeatable)."),
    archs_file: Path | None = typer.Option(None, "--archs-file", help="File of architectures, one a line."),
    all_archs: bool = typer.Option(False, "--all", help="Every architecture suggest picks from (all of NB201)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Predicted latency (ms) of architectures on the model's target device: 'arch<TAB>ms' per line."""
    from latbench.predictor.samplers import candidate_archs

    chosen = sum(bool(x) for x in (arch, archs_file, all_archs))
    if chosen != 1:
        raise typer.BadParameter("give exactly one of --arch, --archs-file and --all")
    model = _load(model_path)
    if archs_file is not None:
        if not archs_file.is_file():
            raise typer.BadParameter(f"no file {archs_file}")
        names = [line.strip() for line in archs_file.read_text().splitlines() if line.strip()]
    elif all_archs:
        names = candidate_archs(model.space)
    else:
        names = list(arch)
    predicted = model.predict(names)
    if as_json:
        print(json.dumps({"device": model.target, "predictions": dict(zip(names, predicted.tolist()))}))
        return
    print("\n".join(f"{a}\t{p:.6g}" for a, p in zip(names, predicted)))


@predictor_app.command("eval")
def eval_command(
    task: str = typer.Option(..., "--task", "-t", help="Task from `latbench tasks list` (ND, FD, F1 ...)."),
    samples: int = typer.Option(20, "--samples", "-n", min=3, help="Target measurements per device."),
    trials: int = typer.Option(3, "--trials", min=1),
    method: str = typer.Option("latbench", "--method", help=METHOD_HELP),
    sampler: str = typer.Option("random", "--sampler", help="random or encoding."),
    dataset_names: str | None = typer.Option(None, "--datasets", help="Datasets to find the devices in, in order."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the result as JSON here."),
    plot: Path | None = typer.Option(None, "--plot", help="PNG of predicted vs measured on one target device."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """The paper's protocol: SRCC over all architectures of each target device, mean +/- std over trials."""
    from latbench import predictor

    result = predictor.evaluate(
        task, samples, trials, method, sampler, _names(dataset_names), seed=seed, progress=lambda m: err.print(m)
    )
    paper = predictor.PAPER_20.get(result.task, {})
    table = Table("device", f"SRCC ({method}, {samples} samples, {trials} trials)", title=f"task {result.task}")
    for device, value in result.per_device.items():
        table.add_row(device, f"{value:.3f} ± {result.per_device_std[device]:.3f}")
    table.add_row("mean", f"{result.mean_srcc:.3f} ± {result.std_srcc:.3f}", style="bold")
    out.print(table)
    if paper:
        reported = ", ".join(f"{k} {v:.3f}" for k, v in paper.items())
        out.print(f"paper (20 samples): {reported}", markup=False)
    if result.task in predictor.BAR_20:
        out.print(f"bar (best of paper and simple baselines, 20 samples): {predictor.BAR_20[result.task]:.3f}")
    if json_out is not None:
        json_out.write_text(json.dumps(result.as_dict(), indent=2) + "\n")
        err.print(f"wrote {json_out}")
    if plot is not None:
        err.print(f"wrote {predictor.plot_example(result, plot)}")


@predictor_app.command("suggest")
def suggest_command(
    space: str = SPACE,
    samples: int = typer.Option(20, "--samples", "-n", min=1, help="How many architectures to measure."),
    sampler: str = typer.Option("encoding", "--sampler", help="encoding (clusters + buckets) or random."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Architectures to measure on a new device, one a line."""
    from latbench import predictor

    print("\n".join(predictor.suggest(space, samples, sampler, seed)))
