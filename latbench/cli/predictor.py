"""``latbench predictor`` (pretrain, transfer, eval, suggest) and ``latbench predict``: thin layers over
``latbench.predictor``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import typer

from latbench import stability
from latbench.cli import options as opt
from latbench.cli.console import Table, err, out, styled
from latbench.cli.encodings import encodings_app
from latbench.cli.progress import ProgressBars

if TYPE_CHECKING:
    from rich.console import Console

    from latbench.datasets import DeviceMeta
    from latbench.predictor import Predictor
    from latbench.predictor.evaluate import Evaluation

predictor_app = typer.Typer(
    help="Latency predictors: pretrain on source devices, transfer to a new device, evaluate.", no_args_is_help=True
)
predictor_app.add_typer(encodings_app, name="encodings")

METHOD_HELP = (
    "Method: latbench (default ensemble), nasflat, help, multipredict, flops, params, ridge, nnls, cost-ridge, "
    "cost-nnls."
)


def _names(value: str | None) -> list[str] | None:
    return [n.strip() for n in value.split(",") if n.strip()] if value else None


@predictor_app.command("pretrain")
def pretrain_command(
    space: opt.Space,
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
    out.print(str(model.save(out_path)))


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
    report_path: Path | None = typer.Option(None, "--report", help="Write the out-of-fold accuracy as JSON here."),
    include_unstable: opt.IncludeUnstable = False,
) -> None:
    """Transfer a pretrained predictor to a device from a few measurements; prints the model file's path.

    The file also keeps the transfer's out-of-fold errors (each fold of the samples predicted by a transfer from
    the others), from which `latbench predict` sizes its intervals and `latbench search --confirm` its first error
    margin; their SRCC and relative errors are printed."""
    from latbench import datasets, predictor
    from latbench.predictor.samplers import sample_indices

    if (dataset is None) == (results is None):
        raise typer.BadParameter("give exactly one of --dataset and --results")
    pre = load_model(model_path)
    if results is not None:
        ds = datasets.build_from_results(results, device=device, include_unstable=include_unstable)
        if device not in ds.device_names:
            raise predictor.UnknownDevice(f"{results} has no device {device!r}; it has: {', '.join(ds.device_names)}")
        quality = ds.devices[ds.device_names.index(device)].quality
        if quality.get("stability"):
            err.print(styled("warning:", "yellow", quality["stability"]))
        if quality.get("unstable_left_out"):
            err.print(stability.left_out(quality["unstable_left_out"]))
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
    _record_setup(model, ds.device(device))
    _warn(model)
    from latbench.predictor import out_of_fold

    pairs = out_of_fold.recorded(model)
    if folds and pairs is None:
        err.print("not cross-validating the transfer: that needs --folds 2 or more, each fold leaving 3 samples")
    report = None if pairs is None else _out_of_fold_report(model, *pairs)
    out.print(str(model.save(out_path)))
    if report is not None and report_path is not None:
        report_path.write_text(json.dumps(report, indent=2) + "\n")
        err.print(f"wrote {report_path}")


def _record_setup(model: Predictor, device: DeviceMeta) -> None:
    """Keep in ``model`` how the device's samples were measured, as far as its results or dataset say, for
    `latbench search --verify` to measure the same way."""
    from latbench.predictor import setups

    setup = setups.MeasurementSetup.of_device(device)
    setups.record(model, setup)
    if setup.as_info():
        err.print(f"the samples were measured with {setup.describe()}; the model keeps it for search --verify")
    else:
        err.print(f"the measurements of {device.name} do not say how they were taken (batch, runtime ...)")


def _out_of_fold_report(model: Predictor, predicted: list[float], measured: list[float]) -> dict[str, object]:
    """The transfer's out-of-fold SRCC and relative errors, and its 90% interval's width, as a table on stderr."""
    from latbench.predictor import accuracy, calibration
    from latbench.ranking import spearman

    figures = accuracy.accuracy(predicted, measured)
    halfwidth = model.interval_halfwidth()
    srcc = float(np.nan_to_num(spearman(np.asarray(predicted), np.asarray(measured)), nan=0.0))
    factor = float(np.exp(halfwidth))
    table = Table("device", "SRCC", "median err", "p90 err", "±5%", "±10%", "90% interval",
                  title=f"out of fold, {len(measured)} samples")  # fmt: skip
    width = f"-{1 - 1 / factor:.1%} +{factor - 1:.1%}" if np.isfinite(halfwidth) else "unbounded"
    table.add_row(str(model.target), f"{srcc:.3f}", *_accuracy_cells(figures), width)
    report: dict[str, object] = {"device": model.target, "samples": len(measured), "srcc": srcc, **figures,
                                 "interval_level": accuracy.LEVEL, "interval_factor": factor}  # fmt: skip
    if model.calibrated:
        fitted = model.info[calibration.INFO_KEY]
        before = accuracy.accuracy(fitted["model_out_of_fold_ms"], measured)
        table.add_row("uncalibrated", "", *_accuracy_cells(before), "", style="dim")
        report["calibration"] = {"weight": fitted["weight"], "uncalibrated": before}
    err.print(table)
    if model.calibrated:
        err.print(
            f"calibrated to {model.target}: blend weight {fitted['weight']:g} (1: the ensemble alone, 0: the "
            "additive cost model alone), chosen on these out-of-fold errors"
        )
    return report


def load_model(path: Path) -> Predictor:
    """The predictor a ``--model`` names: a model file, or ``shipped:NAME``, one shipped with latbench."""
    from latbench import predictor
    from latbench.errors import UnknownSpace
    from latbench.predictor.pretrained import SHIPPED

    if not str(path).startswith("shipped:"):
        model = predictor.Predictor.load(path)
        _warn(model)
        return model
    name = str(path).split(":", 1)[1]
    try:
        return predictor.load_pretrained(name)
    except UnknownSpace:
        shipped = ", ".join(f"shipped:{n}" for n in SHIPPED)
        raise predictor.ModelFileError(f"there is no shipped predictor {name!r}; choose one of: {shipped}") from None


def _warn(model: Predictor) -> None:
    """Say on stderr why ``model``'s figures are not a transfer's, if they are not (``Predictor.caveat``)."""
    if model.caveat is not None:
        err.print(styled("warning:", "yellow", model.caveat))


def predict_command(
    model_path: Path = typer.Option(..., "--model", "-m", help="Transferred model file."),
    arch: list[str] = typer.Option(None, "--arch", "-a", help="Architecture (repeatable)."),
    archs_file: Path | None = typer.Option(None, "--archs-file", help="File of architectures, one a line."),
    all_archs: bool = typer.Option(False, "--all", help="Every architecture suggest picks from (all of NB201)."),
    as_json: opt.AsJson = False,
    level: float = typer.Option(0.9, "--level", help="Coverage of the intervals."),
) -> None:
    """Predicted latency (ms) of architectures on the model's target device: 'arch<TAB>ms<TAB>\\[low, high]' per
    line, the interval sized on the transfer's out-of-fold errors (a model transferred without them: no interval)."""
    from latbench.predictor.samplers import candidate_archs

    chosen = sum(bool(x) for x in (arch, archs_file, all_archs))
    if chosen != 1:
        raise typer.BadParameter("give exactly one of --arch, --archs-file and --all")
    model = load_model(model_path)
    if archs_file is not None:
        if not archs_file.is_file():
            raise typer.BadParameter(f"no file {archs_file}")
        names = [line.strip() for line in archs_file.read_text().splitlines() if line.strip()]
    elif all_archs:
        names = candidate_archs(model.space)
    else:
        names = list(arch)
    if not model.has_intervals:
        predicted = model.predict(names)
        if as_json:
            print(json.dumps({"device": model.target, "predictions": dict(zip(names, predicted.tolist()))}))
            return
        print("\n".join(f"{a}\t{p:.6g}" for a, p in zip(names, predicted)))
        return
    predicted, low, high = model.predict_interval(names, level)
    if as_json:
        intervals = {a: [lo, hi] for a, lo, hi in zip(names, low.tolist(), high.tolist())}
        payload = {"device": model.target, "predictions": dict(zip(names, predicted.tolist())), "level": level}
        print(json.dumps({**payload, "intervals": intervals}))
        return
    print("\n".join(f"{a}\t{p:.6g}\t[{lo:.6g}, {hi:.6g}]" for a, p, lo, hi in zip(names, predicted, low, high)))


@predictor_app.command("eval")
def eval_command(
    task: str = typer.Option(..., "--task", help="Task from `latbench tasks list` (ND, FD, F1 ...)."),
    samples: int = typer.Option(20, "--samples", "-n", min=3, help="Target measurements per device."),
    trials: int = typer.Option(3, "--trials", min=1),
    method: str = typer.Option("latbench", "--method", help=METHOD_HELP),
    sampler: str = typer.Option(
        "random", "--sampler", help="random, encoding, or adaptive (measures a batch at a time where it errs)."
    ),
    dataset_names: str | None = typer.Option(None, "--datasets", help="Datasets to find the devices in, in order."),
    json_out: Path | None = typer.Option(None, "--out", "-o", help="Write the result as JSON to this file."),
    as_json: opt.AsJson = False,
    plot: Path | None = typer.Option(None, "--plot", help="PNG of predicted vs measured on one target device."),
    seed: int = typer.Option(0, "--seed"),
    folds: int = typer.Option(
        0,
        "--folds",
        min=0,
        help="Transfer as `transfer` does (5: its default): cross-validated, calibrated to each device, intervals "
        "scored (0: the ensemble alone, 6x faster).",
    ),
    level: float = typer.Option(0.9, "--level", help="Coverage the intervals aim at, with --folds."),
) -> None:
    """The paper's protocol: SRCC over all architectures of each target device, mean +/- std over trials; and
    the milliseconds' relative error over the architectures not sampled (median, 90th percentile, shares within
    ±5% and ±10%), with --folds the coverage of the intervals."""
    from latbench import predictor

    result = predictor.evaluate(
        task,
        samples,
        trials,
        method,
        sampler,
        _names(dataset_names),
        seed=seed,
        progress=ProgressBars(labels={}),
        folds=folds,
        level=level,
    )
    if as_json:
        print(json.dumps(result.as_dict()))
    else:
        heading = f"SRCC ({method}, {samples} samples, {trials} trials)"
        _print_evaluation(result, heading, level if folds else None, out if json_out is None else err)
    if json_out is not None:
        json_out.write_text(json.dumps(result.as_dict(), indent=2) + "\n")
        if as_json:
            err.print(f"wrote {json_out}")
        else:
            out.print(str(json_out))
    if plot is not None:
        err.print(f"wrote {predictor.plot_example(result, plot)}")


def _print_evaluation(result: Evaluation, heading: str, level: float | None, console: Console) -> None:
    """The SRCC and relative-error table, next to the paper's figures and the bar where the task has them, on
    ``console``: stdout, or stderr when stdout is for the path of the file written."""
    from latbench import predictor

    estimates = result.per_device_estimate
    columns = ["median err", "p90 err", "±5%", "±10%"] + ([f"{level:.0%} coverage"] if level is not None else [])
    columns = (["its own estimate"] if estimates else []) + columns
    table = Table("device", heading, *columns, title=f"task {result.task}")
    per_device = result.per_device_accuracy
    for device, value in result.per_device.items():
        estimate = [f"{estimates[device][0]:.3f} ± {estimates[device][1]:.3f}"] if estimates else []
        srcc = f"{value:.3f} ± {result.per_device_std[device]:.3f}"
        table.add_row(device, srcc, *estimate, *_accuracy_cells(per_device[device]))
    mean_estimate = [f"{np.mean([e for e, _ in estimates.values()]):.3f}"] if estimates else []
    table.add_row(
        "mean",
        f"{result.mean_srcc:.3f} ± {result.std_srcc:.3f}",
        *mean_estimate,
        *_accuracy_cells(result.mean_accuracy),
        style="bold",
    )
    console.print(table)
    if estimates:
        console.print(
            "its own estimate: the SRCC the adaptive sampler judged its own model (the ensemble without the network) "
            "to have from its results (± its standard deviation, averaged over the trials); the true SRCC is the "
            f"method's transfer on the same samples; {result.estimate_caveat}"
        )
    paper = predictor.PAPER_20.get(result.task, {})
    if paper:
        reported = ", ".join(f"{k} {v:.3f}" for k, v in paper.items())
        console.print(f"paper (20 samples): {reported}")
    if result.task in predictor.BAR_20:
        console.print(f"bar (best of paper and simple baselines, 20 samples): {predictor.BAR_20[result.task]:.3f}")


def _accuracy_cells(figures: dict[str, float]) -> list[str]:
    cells = [f"{figures['median_rel_error']:.1%}", f"{figures['p90_rel_error']:.1%}"]
    cells += [f"{figures['within_5']:.0%}", f"{figures['within_10']:.0%}"]
    return cells + ([f"{figures['coverage']:.0%}"] if "coverage" in figures else [])


@predictor_app.command("suggest")
def suggest_command(
    space: opt.Space,
    samples: int = typer.Option(20, "--samples", "-n", min=1, help="How many architectures to measure."),
    sampler: str = typer.Option("encoding", "--sampler", help="encoding (clusters + buckets) or random."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Architectures to measure on a new device, one a line."""
    from latbench import predictor

    print("\n".join(predictor.suggest(space, samples, sampler, seed)))
