"""``latbench search``: latency-constrained NAS with a transferred predictor, finalists confirmed by measurement."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from latbench.cli import options as opt
from latbench.cli.console import Table, err, out, styled
from latbench.cli.predictor import load_model
from latbench.cli.progress import ProgressBars
from latbench.errors import LatbenchError

if TYPE_CHECKING:
    from latbench.predictor import Predictor
    from latbench.predictor.setups import MeasurementSetup
    from latbench.search import Confirmation, SearchResult, Verified

VERIFY_AT = "With --verify: measure at this "


def search_command(
    model: Annotated[Path, opt.model("A transferred predictor (.pt).")],
    space: opt.Space,
    max_latency_ms: Annotated[float, typer.Option("--max-latency-ms", help="Latency limit on the model's device.")],
    objective: str = typer.Option("params", "--objective", help="What to maximise: params, flops or proxy."),
    proxy: str = typer.Option("nwot", "--proxy", help="Zero-cost proxy for --objective proxy."),
    method: str = typer.Option("evolution", "--method", help="evolution (aging evolution) or random."),
    budget: int = typer.Option(2000, "--budget", min=1, help="Architectures the predictor rates."),
    finalists: int = typer.Option(5, "--finalists", min=1, help="Best feasible architectures to report."),
    seed: opt.Seed = 0,
    verify: str = typer.Option("local", "--verify", help="Measure finalists: local, campaign or none."),
    confirm: int | None = typer.Option(
        None,
        "--confirm",
        min=0,
        help="Measurements to spend finding finalists measured within the limit, with --verify local or "
        "campaign (default 3 x --finalists; 0: measure the predicted finalists once).",
    ),
    collector: opt.Collector = None,
    token: opt.AdminToken = None,
    device: Annotated[str | None, opt.device("Collector device to verify on (default: the model's).")] = None,
    runtime: Annotated[str | None, opt.runtime(VERIFY_AT + "runtime (the model's, else onnxruntime).")] = None,
    provider: str | None = typer.Option(None, "--provider", help=VERIFY_AT + "provider (the model's, else cpu)."),
    precision: str | None = typer.Option(None, "--precision", help=VERIFY_AT + "precision (the model's, else fp32)."),
    batch: int | None = typer.Option(None, "--batch", "-b", min=1, help=VERIFY_AT + "batch (the model's, else 1)."),
    threads: Annotated[
        int | None, typer.Option("--threads", "-t", min=1, help=VERIFY_AT + "intra-op threads (the model's, else 1).")
    ] = None,
    resolution: int | None = typer.Option(None, "--resolution", min=1, help=VERIFY_AT + "input resolution."),
    classes: int | None = typer.Option(None, "--classes", min=1, help=VERIFY_AT + "output classes."),
    as_json: opt.AsJson = False,
    level: float = typer.Option(
        0.9, "--level", min=0.0, max=0.99, help="Search under the upper bound of this interval (0: the prediction)."
    ),
) -> None:
    """Find the best architectures under a latency limit by prediction, then confirm them by measurement, at the
    setup (batch, runtime, precision ...) the model's samples were measured at."""
    from latbench import search as nas
    from latbench.predictor import setups
    from latbench.search.measuring import verification_setup
    from latbench.spaces import get_space

    if verify not in ("local", "campaign", "none"):
        raise typer.BadParameter("--verify must be local, campaign or none")
    predictor = load_model(model)
    if get_space(space).name != predictor.space:
        raise LatbenchError(f"{model} predicts {predictor.space} architectures, not {space}")
    if precision is not None:
        from latbench.precision import check_precision

        try:
            check_precision(precision)
        except LatbenchError as exc:
            raise typer.BadParameter(str(exc)) from None
    given = setups.MeasurementSetup(runtime, provider, precision, batch, threads, resolution, classes)
    setup, warnings = verification_setup(setups.recorded(predictor), given, str(model))
    if verify == "none":
        warnings = []
    for warning in warnings:
        err.print(styled("warning:", "yellow", warning))
    measure_ms = _measurer(verify, space, setup, collector, token, device or predictor.target)
    bound = _interval_bound(predictor, level)
    oracle = predictor.predict if bound is None else lambda archs: predictor.predict(archs) * bound.factor
    err.print(f"searching {predictor.space} for {predictor.target} under {max_latency_ms} ms ({method}, {budget})")
    result = nas.search(
        oracle,
        space,
        max_latency_ms,
        objective_name=objective,
        proxy=proxy,
        method=method,
        budget=budget,
        finalists=finalists,
        seed=seed,
    )
    err.print(f"rated {result.queried} architectures in {result.seconds:.1f} s; {result.feasible} predicted feasible")
    if not result.finalists:
        raise LatbenchError(f"no architecture is predicted under {max_latency_ms} ms; raise the limit or the budget")
    verifying = Verifying(setup if measure_ms is not None else None, warnings)
    if measure_ms is None or confirm == 0:
        _report_verified(result, predictor.target, measure_ms, as_json, bound, verifying)
        return
    from latbench.predictor.out_of_fold import recorded

    evidence = recorded(predictor)
    if evidence is not None and bound is not None:
        evidence = ([p * bound.factor for p in evidence[0]], evidence[1])
    if evidence is not None:
        start = nas.error_margin(*evidence)
        err.print(f"the margin starts at {start:.1%}, from {len(evidence[0])} out-of-fold errors of the transfer")
    confirmation = nas.confirm(
        result,
        measure_ms,
        finalists=finalists,
        budget=confirm,
        evidence=evidence,
        progress=ProgressBars(labels={}),
    )
    _report_confirmed(result, predictor.target, confirmation, as_json, bound, verifying)


@dataclass
class Verifying:
    """The setup finalists are measured at (None: not measured) and the warnings so far, for the report."""

    setup: MeasurementSetup | None
    warnings: list[str]
    poor_agreement: str | None = None

    def fields(self) -> dict[str, object]:
        """The report's ``setup`` and ``warnings`` (JSON)."""
        return {"setup": None if self.setup is None else self.setup.as_info(), "warnings": self.warnings}

    def warn_poor_agreement(self) -> None:
        """Last on stderr, where it is seen: "within the limit" means little when predictions are far off."""
        if self.poor_agreement is not None:
            err.print(styled("warning:", "bold red", self.poor_agreement))


@dataclass(frozen=True)
class Bound:
    """The search rates candidates by the upper end of their ``level`` interval: the prediction times ``factor``."""

    level: float
    factor: float

    def promised(self, verified: list[Verified]) -> dict[str, float | int]:
        """Of the measured candidates, how many the upper bound put within the limit, and how many ran within it."""
        promised = [v for v in verified if v.predicted_ms <= v.max_latency_ms]
        confirmed = sum(v.within_limit for v in promised)
        return {"level": self.level, "factor": self.factor, "promised": len(promised), "confirmed": confirmed}


def _interval_bound(predictor: Predictor, level: float) -> Bound | None:
    """The upper bound to search under, or None (``level`` 0, or a model without out-of-fold errors)."""
    if level == 0:
        return None
    if not predictor.has_intervals:
        err.print("the model has no out-of-fold errors for intervals; searching under its point predictions")
        return None
    halfwidth = predictor.interval_halfwidth(level)
    if not math.isfinite(halfwidth):
        err.print(f"too few out-of-fold errors for a {level:.0%} interval; searching under the point predictions")
        return None
    bound = Bound(level, math.exp(halfwidth))
    err.print(f"rating candidates by the upper end of their {level:.0%} interval (prediction +{bound.factor - 1:.1%})")
    return bound


def _promised_line(bound: Bound | None, verified: list[Verified]) -> None:
    if bound is not None and verified:
        counts = bound.promised(verified)
        err.print(
            f"the {bound.level:.0%} interval promised {counts['promised']} measured candidate(s) within the limit; "
            f"measurement confirmed {counts['confirmed']}"
        )


def _measurer(
    verify: str, space: str, setup: MeasurementSetup, collector: str | None, token: str | None, device: str | None
) -> Callable[[list[str]], dict[str, float]] | None:
    """Architectures -> measured ms at ``setup`` on this machine or the device's agents; None when not measuring.
    A device that could not measure them (unknown, no agent seen recently, not its runtime) is refused here,
    before the search."""
    if verify == "local":
        from latbench.search.measuring import measure_locally

        err.print(f"finalists are measured here with {setup.describe()}")
        return lambda archs: measure_locally(space, archs, setup)
    if verify == "campaign":
        from latbench.search.measuring import check_device, measure_by_campaign

        if not collector:
            raise typer.BadParameter("--verify campaign needs --collector (or LATBENCH_COLLECTOR)")
        if not device:
            raise typer.BadParameter("--verify campaign needs --device for a model without a target device")
        check_device(collector, token, device, str(setup.runtime))
        err.print(f"finalists are measured on {device} through {collector} with {setup.describe()}")
        progress = ProgressBars(labels={})
        return lambda archs: measure_by_campaign(collector, token, space, archs, device, setup, progress=progress)
    return None


def _header(result: SearchResult, device: str | None) -> dict[str, object]:
    return {
        "space": result.space,
        "device": device,
        "max_latency_ms": result.max_latency_ms,
        "method": result.method,
        "objective": result.objective,
        "queried": result.queried,
        "feasible": result.feasible,
        "seconds": result.seconds,
        "finalists": [c.as_dict for c in result.finalists],
    }


def _table(
    result: SearchResult, rows: list[tuple[str, float, float, float | None]], title: str, bound: Bound | None
) -> None:
    """One row per (architecture, objective, predicted ms or its upper bound, measured ms or None)."""
    limit = result.max_latency_ms
    table = Table(title=f"{title} {limit} ms", title_justify="left")
    rated = "predicted ms" if bound is None else f"{bound.level:.0%} upper ms"
    for col in ("architecture", result.objective, rated, "measured ms", "within"):
        table.add_column(col, justify="left" if col == "architecture" else "right")
    for arch, score, predicted, measured in rows:
        table.add_row(
            arch,
            f"{score:.4g}",
            f"{predicted:.3f}",
            "-" if measured is None else f"{measured:.3f}",
            "-" if measured is None else ("yes" if measured <= limit else "no"),
        )
    err.print(table)


def _agreement(verified: list[Verified], bound: Bound | None, verifying: Verifying) -> dict[str, float]:
    """How far the point predictions (not their upper bounds) agree with the measurements; a poor agreement
    (``latbench.search.agreement_warning``) joins ``verifying``'s warnings."""
    from latbench import search as nas

    if bound is not None:
        verified = [replace(v, predicted_ms=v.predicted_ms / bound.factor) for v in verified]
    summary = nas.agreement(verified)
    poor = nas.agreement_warning(summary)
    if poor is not None:
        verifying.poor_agreement = poor
        verifying.warnings.append(poor)
    return summary


def _agreement_line(summary: dict[str, float]) -> None:
    err.print(
        f"measured within the limit: {summary['within_limit']:.0%}; "
        f"median |predicted - measured| / measured: {summary['median_abs_rel_error']:.1%}"
    )


def _report_verified(
    result: SearchResult,
    device: str | None,
    measure_ms: Callable[[list[str]], dict[str, float]] | None,
    as_json: bool,
    bound: Bound | None,
    verifying: Verifying,
) -> None:
    """The predicted finalists, each measured once when measuring (``--confirm 0``)."""
    from latbench import search as nas

    archs = [c.arch for c in result.finalists]
    measured: dict[str, float] = {}
    if measure_ms is not None:
        err.print(f"measuring {len(archs)} finalists")
        measured = measure_ms(archs)
    verified = nas.verify(result, measured)
    summary = _agreement(verified, bound, verifying) if verified else None
    if as_json:
        payload = {**_header(result, device), "verified": [v.as_dict() for v in verified]}
        if summary is not None:
            payload["agreement"] = summary
        if bound is not None:
            payload["interval"] = bound.promised(verified)
        out.print(json.dumps({**payload, **verifying.fields()}, indent=2))
    else:
        rows = [(c.arch, c.score, c.latency_ms, measured.get(c.arch)) for c in result.finalists]
        _table(result, rows, "finalists under", bound)
        if summary is not None:
            _agreement_line(summary)
        _promised_line(bound, verified)
    verifying.warn_poor_agreement()
    if not as_json:
        for arch in archs:
            out.print(arch)


def _report_confirmed(
    result: SearchResult,
    device: str | None,
    confirmation: Confirmation,
    as_json: bool,
    bound: Bound | None,
    verifying: Verifying,
) -> None:
    """The finalists measured within the limit; everything measured on the way, predicted next to measured."""

    found = confirmation.finalists
    summary = _agreement(confirmation.measured, bound, verifying) if confirmation.measured else None
    if as_json:
        payload = {
            **_header(result, device),
            "verified": [v.as_dict() for v in confirmation.measured],
            "confirmation": confirmation.as_dict(),
        }
        if summary is not None:
            payload["agreement"] = summary
        if bound is not None:
            payload["interval"] = bound.promised(confirmation.measured)
        out.print(json.dumps({**payload, **verifying.fields()}, indent=2))
    else:
        ranked = sorted(confirmation.measured, key=lambda v: (-v.score, v.measured_ms))
        _table(result, [(v.arch, v.score, v.predicted_ms, v.measured_ms) for v in ranked], "measured against", bound)
        if summary is not None:
            _agreement_line(summary)
        _promised_line(bound, confirmation.measured)
    spent = f"{confirmation.spent} of {confirmation.budget} confirmation measurements"
    failed = f" ({len(confirmation.failed)} failed)" if confirmation.failed else ""
    if confirmation.complete:
        err.print(f"confirmed {len(found)} finalists measured within the limit with {spent}{failed}")
    else:
        why = "the budget ran out" if confirmation.stopped == "budget" else "no more candidates were near the limit"
        err.print(
            f"only {len(found)} of {confirmation.wanted} finalists measured within the limit: {why} "
            f"after {spent}{failed}; raise --confirm, --budget or the limit"
        )
    verifying.warn_poor_agreement()
    if not as_json:
        for v in found:
            out.print(v.arch)
    if not found:
        raise LatbenchError(f"no candidate was measured within {result.max_latency_ms} ms")
