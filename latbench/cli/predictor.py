"""``latbench predictor`` (pretrain, transfer, eval, suggest) and ``latbench predict``: thin layers over
``latbench.predictor``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import typer

from latbench.cli import options as opt
from latbench.cli.console import Table, err, out, styled
from latbench.cli.encodings import encodings_app
from latbench.cli.jsonout import dumps
from latbench.cli.progress import ProgressBars
from latbench.errors import InvalidArchitecture
from latbench.predictor import accuracy, setups
from latbench.predictor.errors import ArchsFileError, PredictorError
from latbench.predictor.methods import DEFAULT_METHOD, METHODS
from latbench.predictor.samplers import EVAL_SAMPLERS, SAMPLERS

if TYPE_CHECKING:
    from rich.console import Console

    from latbench.predictor import Predictor
    from latbench.predictor.evaluate import Evaluation
    from latbench.predictor.targets import TargetSamples

predictor_app = typer.Typer(
    help="Latency predictors: pretrain on source devices, transfer to a new device, evaluate.", no_args_is_help=True
)
predictor_app.add_typer(encodings_app, name="encodings")

METHOD_HELP = f"Method, one of: {', '.join(METHODS)} (docs/predictor.md, 'Methods')."
SAMPLER_HELP = {
    "transfer": f"How --dataset samples are picked, one of: {', '.join(SAMPLERS)}. The default, random, is eval's "
    "(the paper's protocol): it reproduces eval's figures and draws the samples as the architectures the "
    "intervals are for are drawn; suggest's encoding spreads a new device's few measurements over the space "
    "(neither ranked better in docs/benchmarks.md, 'Adaptive sampling').",
    "suggest": f"One of: {', '.join(SAMPLERS)}. encoding (clusters + buckets) spreads a new device's measurements "
    "over typical and extreme architectures; random draws them as transfer --dataset does by default.",
    "eval": f"One of: {', '.join(EVAL_SAMPLERS)} (adaptive measures a batch at a time where the model errs).",
}


def _names(value: str | None) -> list[str] | None:
    return [n.strip() for n in value.split(",") if n.strip()] if value else None


def _level(value: float) -> float:
    """``--level``, an interval's coverage: the contract ``accuracy.check_level`` holds the API to (strictly
    between 0 and 1), refused as a usage error."""
    try:
        return accuracy.check_level(value)
    except PredictorError as exc:
        raise typer.BadParameter(str(exc)) from None


def _folds(value: int) -> int:
    """``--folds``: 0 (no cross-validation) or 2 and more; one fold would leave nothing to validate on."""
    if value == 1:
        raise typer.BadParameter("give 0 (no cross-validation) or 2 or more folds")
    return value


def _refuse_given(ctx: typer.Context, why: str, *names: str) -> None:
    """Refuse the options ``names`` (parameter names) given on the command line, which ``why`` makes ignored: a
    usage error rather than an option silently without effect."""
    given = [
        param.opts[0]
        for param in ctx.command.params
        if param.name in names
        and (source := ctx.get_parameter_source(param.name)) is not None
        and source.name == "COMMANDLINE"  # typer's own click: compared by name
    ]
    if given:
        raise typer.BadParameter(f"{' and '.join(given)} {'does' if len(given) == 1 else 'do'} not apply {why}")


Level = typer.Option(accuracy.LEVEL, "--level", callback=_level, help="Coverage of the intervals, in (0, 1).")


@predictor_app.command("pretrain")
def pretrain_command(
    space: opt.Space,
    devices: str = typer.Option(..., "--devices", help="Comma-separated source devices."),
    dataset_names: str | None = typer.Option(None, "--datasets", help="Datasets to find them in, in order."),
    samples_per_device: int = typer.Option(300, "--samples-per-device", min=2, help="Training archs per device."),
    epochs: int = typer.Option(15, "--epochs", min=1, help="Pretraining epochs."),
    method: str = typer.Option(DEFAULT_METHOD, "--method", callback=opt.one_of(list(METHODS)), help=METHOD_HELP),
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
    ctx: typer.Context,
    model_path: Path = typer.Option(..., "--model", "-m", help="Pretrained model file (or 'shipped:nb201')."),
    device: str = typer.Option(..., "--device", "-d", help="Target device name."),
    dataset: str | None = typer.Option(None, "--dataset", help="Dataset holding the device's measurements."),
    results: Path | None = typer.Option(None, "--results", help="Results file of `latbench measure` (all are used)."),
    samples: int = typer.Option(20, "--samples", "-n", min=3, help="Measurements to use (from --dataset)."),
    sampler: str = typer.Option("random", "--sampler", callback=opt.one_of(SAMPLERS), help=SAMPLER_HELP["transfer"]),
    method: str | None = typer.Option(
        None, "--method", callback=opt.one_of(list(METHODS)), help="Default: the model's. " + METHOD_HELP
    ),
    seed: int = typer.Option(0, "--seed"),
    folds: int = typer.Option(
        5,
        "--folds",
        min=0,
        callback=_folds,
        help="Transfers that cross-validate this one, for search's error margin (0: none).",
    ),
    out_path: Path = typer.Option(..., "--out", "-o", help="Model file to write (.pt)."),
    report_path: Path | None = typer.Option(None, "--report", help="Write the out-of-fold accuracy as JSON here."),
    include_unstable: opt.IncludeUnstable = False,
) -> None:
    """Transfer a pretrained predictor to a device from a few measurements; prints the model file's path.

    The file also keeps the transfer's out-of-fold errors (each fold of the samples predicted by a transfer from
    the others), from which `latbench predict` sizes its intervals and `latbench search --confirm` its first error
    margin; their SRCC and relative errors are printed. It records how and where the samples were measured."""
    from latbench import predictor
    from latbench.predictor import out_of_fold, targets

    if (dataset is None) == (results is None):
        raise typer.BadParameter("give exactly one of --dataset and --results")
    if results is not None:
        _refuse_given(ctx, "with --results, which uses every result of the file", "samples", "sampler")
    else:
        _refuse_given(
            ctx, "with --dataset, which keeps or leaves out unstable results when it is built", "include_unstable"
        )
    pre = load_model(model_path)
    if results is not None:
        chosen = targets.from_results(results, device, include_unstable)
    else:
        chosen = targets.from_dataset(dataset, device, samples, sampler, seed)  # type: ignore[arg-type]
    for warning in chosen.warnings:
        err.print(styled("warning:", "yellow", warning))
    for note in chosen.notes:
        err.print(note)
    if chosen.space != pre.space:
        raise predictor.PredictorError(f"the model predicts {pre.space} but the measurements are {chosen.space}")
    err.print(f"transferring to {device} from {len(chosen.archs)} measured architecture(s)...")
    model = predictor.transfer_and_validate(
        pre, device, chosen.archs, chosen.latency_ms, folds, method, seed, err.print
    )
    chosen.record(model)
    _say_setup(model, chosen)
    _warn(model)
    pairs = out_of_fold.recorded(model)
    if folds and pairs is None:
        err.print("not cross-validating the transfer: that needs --folds 2 or more, each fold leaving 3 samples")
    report = None if pairs is None else _out_of_fold_report(model, *pairs)
    out.print(str(model.save(out_path)))
    if report is not None and report_path is not None:
        report_path.write_text(dumps(report, indent=2) + "\n")
        err.print(f"wrote {report_path}")


MACHINE = {True: "this machine", False: "not this machine", None: "latbench cannot tell which machine"}
"""``setups.is_this_machine`` in words."""


def _say_setup(model: Predictor, chosen: TargetSamples) -> None:
    """Say how and where the samples were measured, as the model now keeps it for `latbench search --verify`."""
    setup = chosen.setup
    if setup.as_info():
        err.print(f"the samples were measured with {setup.describe()}; the model keeps it for search --verify")
    else:
        err.print(f"the measurements of {chosen.device.name} do not say how they were taken (batch, runtime ...)")
    err.print(f"they were measured on {chosen.where.describe()}: {MACHINE[setups.is_this_machine(model.info)]}")


def _out_of_fold_report(model: Predictor, predicted: list[float], measured: list[float]) -> dict[str, object]:
    """The transfer's out-of-fold SRCC and relative errors, and its 90% interval's width, as a table on stderr."""
    from latbench.predictor import calibration
    from latbench.ranking import spearman

    figures = accuracy.accuracy(predicted, measured)
    halfwidth = model.interval_halfwidth()
    srcc = float(np.nan_to_num(spearman(np.asarray(predicted), np.asarray(measured)), nan=0.0))
    factor = float(np.exp(halfwidth))
    table = Table("device", "SRCC", "median err", "p90 err", "±5%", "±10%", "90% interval",
                  title=f"out of fold, {len(measured)} samples")  # fmt: skip
    width = f"-{1 - 1 / factor:.1%} +{factor - 1:.1%}" if np.isfinite(halfwidth) else "unbounded"
    table.add_row(str(model.target), f"{srcc:.3f}", *_accuracy_cells(figures), width)
    ranking = accuracy.ranking_caveat(srcc, len(measured))
    report: dict[str, object] = {"device": model.target, "samples": len(measured), "srcc": srcc, **figures,
                                 "interval_level": accuracy.LEVEL, "interval_factor": factor,
                                 "caveat": "; ".join(c for c in (ranking, model.caveat) if c) or None}  # fmt: skip
    if model.calibrated:
        fitted = model.info[calibration.INFO_KEY]
        before = accuracy.accuracy(fitted["model_out_of_fold_ms"], measured)
        table.add_row("uncalibrated", "", *_accuracy_cells(before), "", style="dim")
        report["calibration"] = {"weight": fitted["weight"], "uncalibrated": before}
    err.print(table)
    if ranking is not None:
        err.print(styled("warning:", "yellow", ranking))
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
    archs_file: Path | None = typer.Option(
        None, "--archs-file", help="File of architectures, one a line; blank lines and # comments are skipped."
    ),
    all_archs: bool = typer.Option(
        False,
        "--all",
        help="Every architecture suggest picks from in the model's space: all 15,625 NB201 cells, the architectures "
        "of its built-in dataset for FBNet and OFA, 5,000 seeded samples of a plugin's space.",
    ),
    as_json: opt.AsJson = False,
    level: float = Level,
) -> None:
    """Predicted latency (ms) of architectures on the model's target device: 'arch<TAB>ms<TAB>\\[low, high]' per
    line, the interval sized on the transfer's out-of-fold errors (a model transferred without them: no interval;
    too few of them: an unbounded interval, 'inf' and in --json null)."""
    from latbench.predictor.archfile import read_archs
    from latbench.predictor.samplers import candidate_archs
    from latbench.spaces import get_space

    chosen = sum(bool(x) for x in (arch, archs_file, all_archs))
    if chosen != 1:
        raise typer.BadParameter("give exactly one of --arch, --archs-file and --all")
    model = load_model(model_path)
    if archs_file is not None:
        try:
            names = read_archs(archs_file, model.space)
        except ArchsFileError as exc:
            raise typer.BadParameter(str(exc), param_hint="--archs-file") from None
    elif all_archs:
        names = candidate_archs(model.space)
    else:
        names = list(arch)
        try:
            get_space(model.space).canonical_many(names)
        except InvalidArchitecture as exc:
            raise typer.BadParameter(str(exc), param_hint="--arch") from None
    if not model.has_intervals:
        predicted = model.predict(names)
        if as_json:
            print(dumps({"device": model.target, "predictions": dict(zip(names, predicted.tolist()))}))
            return
        print("\n".join(f"{a}\t{p:.6g}" for a, p in zip(names, predicted)))
        return
    predicted, low, high = model.predict_interval(names, level)
    if as_json:
        intervals = {a: [lo, hi] for a, lo, hi in zip(names, low.tolist(), high.tolist())}
        payload = {"device": model.target, "predictions": dict(zip(names, predicted.tolist())), "level": level}
        print(dumps({**payload, "intervals": intervals}))
        return
    print("\n".join(f"{a}\t{p:.6g}\t[{lo:.6g}, {hi:.6g}]" for a, p, lo, hi in zip(names, predicted, low, high)))


@predictor_app.command("eval")
def eval_command(
    ctx: typer.Context,
    task: str = typer.Option(..., "--task", help="Task from `latbench tasks list` (ND, FD, F1 ...)."),
    samples: int = typer.Option(20, "--samples", "-n", min=3, help="Target measurements per device."),
    trials: int = typer.Option(3, "--trials", min=1),
    method: str = typer.Option(DEFAULT_METHOD, "--method", callback=opt.one_of(list(METHODS)), help=METHOD_HELP),
    sampler: str = typer.Option("random", "--sampler", callback=opt.one_of(EVAL_SAMPLERS), help=SAMPLER_HELP["eval"]),
    dataset_names: str | None = typer.Option(None, "--datasets", help="Datasets to find the devices in, in order."),
    json_out: Path | None = typer.Option(None, "--out", "-o", help="Write the result as JSON to this file."),
    as_json: opt.AsJson = False,
    plot: Path | None = typer.Option(None, "--plot", help="PNG of predicted vs measured on one target device."),
    seed: int = typer.Option(0, "--seed"),
    folds: int = typer.Option(
        0,
        "--folds",
        min=0,
        callback=_folds,
        help="Transfer as `transfer` does (5: its default): cross-validated, calibrated to each device, intervals "
        "scored (0: the ensemble alone, 6x faster).",
    ),
    level: float = typer.Option(
        accuracy.LEVEL, "--level", callback=_level, help="Coverage the intervals aim at, in (0, 1); with --folds."
    ),
) -> None:
    """The paper's protocol: SRCC over all architectures of each target device, mean +/- std over trials; and
    the milliseconds' relative error over the architectures not sampled (median, 90th percentile, shares within
    ±5% and ±10%), with --folds the coverage of the intervals."""
    from latbench.predictor.evaluate import evaluate, plot_example

    if not folds:
        _refuse_given(ctx, "without --folds, which makes the intervals", "level")
    result = evaluate(
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
        print(dumps(result.as_dict()))
    else:
        runs = f"{trials} trials" if trials > 1 else "one trial, so no spread"
        heading = f"SRCC ({method}, {samples} samples, {runs})"
        _print_evaluation(result, heading, level if folds else None, out if json_out is None else err)
    if json_out is not None:
        json_out.write_text(dumps(result.as_dict(), indent=2) + "\n")
        if as_json:
            err.print(f"wrote {json_out}")
        else:
            out.print(str(json_out))
    if plot is not None:
        err.print(f"wrote {plot_example(result, plot)}")


def _print_evaluation(result: Evaluation, heading: str, level: float | None, console: Console) -> None:
    """The SRCC and relative-error table, next to the paper's figures and the bar where the task has them, on
    ``console``: stdout, or stderr when stdout is for the path of the file written."""
    from latbench import predictor

    estimates = result.per_device_estimate
    columns = ["median err", "p90 err", "±5%", "±10%"] + ([f"{level:.0%} coverage"] if level is not None else [])
    columns = (["its own estimate"] if estimates else []) + columns
    table = Table("device", heading, *columns, title=f"task {result.task}")
    per_device = result.per_device_accuracy
    spread = result.trials > 1  # one trial's standard deviation is unknown, not 0
    for device, value in result.per_device.items():
        estimate = [f"{estimates[device][0]:.3f} ± {estimates[device][1]:.3f}"] if estimates else []
        srcc = f"{value:.3f}" + (f" ± {result.per_device_std[device]:.3f}" if spread else "")
        table.add_row(device, srcc, *estimate, *_accuracy_cells(per_device[device]))
    mean_estimate = [f"{np.mean([e for e, _ in estimates.values()]):.3f}"] if estimates else []
    table.add_row(
        "mean",
        f"{result.mean_srcc:.3f}" + (f" ± {result.std_srcc:.3f}" if spread else ""),
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
    sampler: str = typer.Option("encoding", "--sampler", callback=opt.one_of(SAMPLERS), help=SAMPLER_HELP["suggest"]),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Architectures to measure on a new device, one a line."""
    from latbench import predictor

    print("\n".join(predictor.suggest(space, samples, sampler, seed)))
