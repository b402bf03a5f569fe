"""``latbench search``: latency-constrained NAS with a transferred predictor, finalists confirmed by measurement."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from latbench.cli import options as opt
from latbench.cli.console import Table, err, out, styled
from latbench.cli.predictor import load_model
from latbench.cli.progress import ProgressBars
from latbench.errors import LatbenchError
from latbench.search import METHODS, OBJECTIVES
from latbench.search.evolution import STALE_ROUNDS
from latbench.search.objectives import DEFAULT_PROXY

if TYPE_CHECKING:
    from latbench.predictor import Predictor
    from latbench.predictor.setups import MeasurementSetup
    from latbench.search import Confirmation, SearchResult, Verified

VERIFY_AT = "With --verify: measure at this "
VERIFY_MODES = ("local", "campaign", "none")


def _positive(value: float) -> float:
    if not value > 0:
        raise typer.BadParameter(f"the latency limit must be positive, got {value}")
    return value


def _proxy_name(value: str) -> str:
    """The zero-cost proxy columns every zcp table has (imported here: the registry needs torch)."""
    from latbench.predictor.encodings.zcp import NAMES

    opt.one_of(NAMES)(value)
    return value


def search_command(
    model: Annotated[Path, opt.model("A transferred predictor (.pt).")],
    space: opt.Space,
    max_latency_ms: Annotated[
        float, typer.Option("--max-latency-ms", callback=_positive, help="Latency limit on the model's device (> 0).")
    ],
    objective: str = typer.Option(
        "params",
        "--objective",
        callback=opt.one_of(OBJECTIVES),
        help=f"What to maximise: {', '.join(OBJECTIVES)} (params and flops count the layers that reach the output).",
    ),
    proxy: str = typer.Option(
        DEFAULT_PROXY, "--proxy", callback=_proxy_name, help="Zero-cost proxy for --objective proxy (a zcp column)."
    ),
    method: str = typer.Option(
        "evolution", "--method", callback=opt.one_of(METHODS), help=f"Search method: {', '.join(METHODS)}."
    ),
    budget: int = typer.Option(2000, "--budget", min=1, help="Architectures the predictor rates."),
    finalists: int = typer.Option(5, "--finalists", min=1, help="Best feasible architectures to report."),
    seed: opt.Seed = 0,
    verify: str | None = typer.Option(
        None,
        "--verify",
        callback=opt.one_of(VERIFY_MODES),
        help=f"Measure finalists: {', '.join(VERIFY_MODES)} (default: local where the model's samples may have been "
        "measured on this machine, else none).",
    ),
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

    if precision is not None:
        from latbench.precision import check_precision

        try:
            check_precision(precision)
        except LatbenchError as exc:
            raise typer.BadParameter(str(exc)) from None
    predictor = load_model(model)
    if get_space(space).name != predictor.space:
        raise LatbenchError(f"{model} predicts {predictor.space} architectures, not {space}")
    verify = _where_to_verify(verify, predictor, model)
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
    if result.stopped_early:
        err.print(styled("note:", "yellow", _early_stop(result)))
    if not result.finalists:
        raise LatbenchError(_nothing_feasible(result, bound))
    report = Report(result, predictor, bound, Verifying(setup if measure_ms is not None else None, warnings))
    if measure_ms is None or confirm == 0:
        _report_verified(report, measure_ms, as_json)
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
    _report_confirmed(report, confirmation, as_json)


def _early_stop(result: SearchResult) -> str:
    """Why a search rated fewer architectures than its budget (``SearchResult.stopped_early``)."""
    return (
        f"the search stopped after {result.queried} of its budget of {result.budget} architectures: for "
        f"{STALE_ROUNDS} rounds in a row it proposed only architectures it had rated (the space has fewer members "
        "than the budget, or the evolution collapsed onto the fastest few because none was rated within the limit)"
    )


def _nothing_feasible(result: SearchResult, bound: Bound | None) -> str:
    """Why no architecture was rated within the limit, and what to change: when the predictions fit but their
    upper bounds do not, the interval is too wide for the limit, and a larger budget would not help."""
    limit = result.max_latency_ms
    fastest = min(result.history.latency.values())
    predicted = fastest if bound is None else fastest / bound.factor
    if bound is None or predicted > limit:
        more = "" if result.stopped_early else " (or --budget, to rate more architectures)"
        return (
            f"no architecture is predicted under {limit} ms: the fastest of the {result.queried} rated is predicted "
            f"at {predicted:.4g} ms; raise the limit{more}"
        )
    return (
        f"no architecture is rated under {limit} ms: the fastest of the {result.queried} rated is predicted at "
        f"{predicted:.4g} ms, within the limit, but its {bound.level:.0%} interval's upper bound, which the search "
        f"compares with the limit, is {fastest:.4g} ms (+{bound.factor - 1:.1%} for this model); rate by the "
        "prediction itself with --level 0 (or a lower --level), or raise the limit"
    )


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


def _where_to_verify(verify: str | None, predictor: Predictor, model: Path) -> str:
    """``--verify``, checked against where the model's samples were measured: finalists measured on this machine
    confirm nothing about another device's latencies. By default verification is then left out, saying why and how
    to measure on that device; asked for, it is done, with a warning."""
    from latbench.predictor import setups

    here = setups.is_this_machine(predictor.info)
    where = setups.measured_on(predictor.info)
    if here is not False or verify not in (None, "local"):
        if verify in (None, "local") and here is None:
            err.print(styled("warning:", "yellow", f"{model} does not record which machine measured its samples: "
                             "measuring its finalists here confirms them only if it was this one"))  # fmt: skip
        return verify or "local"
    assert where is not None
    elsewhere = (
        f"{model}'s samples were measured on {where.describe()}, not on this machine: measuring its finalists here "
        "would confirm nothing"
    )
    if verify == "local":  # asked for: done, but said loudly (the user may know this machine is alike)
        err.print(styled("warning:", "yellow", f"{elsewhere} of {where.device}'s latencies"))
        return "local"
    err.print(f"{elsewhere}, so they are not measured (--verify campaign measures them on that device's agents)")
    return "none"


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


@dataclass
class Report:
    """What every report of a search reads: the result, the model's point predictions, the bound it was rated by.

    Each architecture is reported as one row of the same keys in every mode (``row``): ``predicted_ms`` the
    model's prediction, ``upper_ms`` the interval's upper bound the search compared with the limit (None when it
    compared the prediction), ``measured_ms`` and ``within_limit`` (None when not measured).
    """

    result: SearchResult
    predictor: Predictor
    bound: Bound | None
    verifying: Verifying

    def predictions(self, archs: Sequence[str]) -> dict[str, float]:
        return dict(zip(archs, (float(p) for p in self.predictor.predict(list(archs))), strict=True))

    def row(
        self, arch: str, score: float, rated_ms: float, measured_ms: float | None, predicted: Mapping[str, float]
    ) -> dict[str, object]:
        limit = self.result.max_latency_ms
        return {
            "arch": arch,
            "score": score,
            "predicted_ms": predicted[arch],
            "upper_ms": None if self.bound is None else rated_ms,
            "measured_ms": measured_ms,
            "within_limit": None if measured_ms is None else measured_ms <= limit,
        }

    def verified_rows(self, verified: Sequence[Verified], predicted: Mapping[str, float]) -> list[dict[str, object]]:
        return [self.row(v.arch, v.score, v.predicted_ms, v.measured_ms, predicted) for v in verified]

    def payload(
        self,
        finalists: list[dict[str, object]],
        verified: Sequence[Verified],
        predicted: Mapping[str, float],
        measured: Mapping[str, float],
        confirmation: Confirmation | None,
        agreement: dict[str, float] | None,
    ) -> dict[str, object]:
        """The ``--json`` document: the same keys whatever was measured (docs/search.md, "JSON")."""
        r = self.result
        confirmed: dict[str, object] | None = None
        if confirmation is not None:
            confirmed = {
                **confirmation.as_dict(),
                "finalists": self.verified_rows(confirmation.finalists, predicted),
                "measured": self.verified_rows(confirmation.measured, predicted),
            }
        return {
            "space": r.space,
            "device": self.predictor.target,
            "max_latency_ms": r.max_latency_ms,
            "method": r.method,
            "objective": r.objective,
            "budget": r.budget,
            "queried": r.queried,
            "stopped_early": r.stopped_early,
            "feasible": r.feasible,
            "seconds": r.seconds,
            "interval": None if self.bound is None else self.bound.promised(list(verified)),
            "finalists": finalists,
            "predicted_finalists": [
                self.row(c.arch, c.score, c.latency_ms, measured.get(c.arch), predicted) for c in r.finalists
            ],
            "verified": self.verified_rows(verified, predicted),
            "agreement": agreement,
            "confirmation": confirmed,
            **self.verifying.fields(),
        }

    def table(self, rows: list[dict[str, object]], title: str) -> None:
        """The rows on stderr: objective, prediction, the upper bound rated by (if any), measurement."""
        limit = self.result.max_latency_ms
        table = Table(title=f"{title} {limit} ms", title_justify="left")
        columns = ["architecture", self.result.objective, "predicted ms"]
        if self.bound is not None:
            columns.append(f"{self.bound.level:.0%} upper ms")
        for col in (*columns, "measured ms", "within"):
            table.add_column(col, justify="left" if col == "architecture" else "right")
        for row in rows:
            measured, within = row["measured_ms"], row["within_limit"]
            cells = [str(row["arch"]), f"{row['score']:.4g}", f"{row['predicted_ms']:.3f}"]
            if self.bound is not None:
                cells.append(f"{row['upper_ms']:.3f}")
            cells += [
                "-" if measured is None else f"{measured:.3f}",
                "-" if within is None else "yes" if within else "no",
            ]
            table.add_row(*cells)
        err.print(table)

    def agreement(self, verified: Sequence[Verified], predicted: Mapping[str, float]) -> dict[str, float] | None:
        """How far the point predictions (not their upper bounds) agree with the measurements (None: nothing was
        measured); a poor agreement (``latbench.search.agreement_warning``) joins the warnings."""
        from latbench import search as nas

        if not verified:
            return None
        summary = nas.agreement([replace(v, predicted_ms=predicted[v.arch]) for v in verified])
        poor = nas.agreement_warning(summary)
        if poor is not None:
            self.verifying.poor_agreement = poor
            self.verifying.warnings.append(poor)
        err.print(
            f"measured within the limit: {summary['within_limit']:.0%}; "
            f"median |predicted - measured| / measured: {summary['median_rel_error']:.1%}"
        )
        return summary


def _report_verified(report: Report, measure_ms: Callable[[list[str]], dict[str, float]] | None, as_json: bool) -> None:
    """The predicted finalists, each measured once when measuring (``--confirm 0``): all of them are the finalists,
    whatever the measurement says."""
    from latbench import search as nas

    result = report.result
    archs = [c.arch for c in result.finalists]
    measured: dict[str, float] = {}
    if measure_ms is not None:
        err.print(f"measuring {len(archs)} finalists")
        measured = measure_ms(archs)
    verified = nas.verify(result, measured)
    predicted = report.predictions(archs)
    rows = [report.row(c.arch, c.score, c.latency_ms, measured.get(c.arch), predicted) for c in result.finalists]
    if not as_json:
        report.table(rows, "finalists under")
    summary = report.agreement(verified, predicted)
    _promised_line(report.bound, verified)
    if as_json:
        out.print(json.dumps(report.payload(rows, verified, predicted, measured, None, summary), indent=2))
    report.verifying.warn_poor_agreement()
    if not as_json:
        for arch in archs:
            out.print(arch)


def _report_confirmed(report: Report, confirmation: Confirmation, as_json: bool) -> None:
    """The finalists measured within the limit; everything measured on the way, predicted next to measured."""
    result = report.result
    found = confirmation.finalists
    measured = {v.arch: v.measured_ms for v in confirmation.measured}
    predicted = report.predictions(list(dict.fromkeys([*(c.arch for c in result.finalists), *measured])))
    if not as_json:
        ranked = sorted(confirmation.measured, key=lambda v: (-v.score, v.measured_ms))
        report.table(report.verified_rows(ranked, predicted), "measured against")
    summary = report.agreement(confirmation.measured, predicted)
    _promised_line(report.bound, confirmation.measured)
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
    if as_json:
        rows = report.verified_rows(found, predicted)
        payload = report.payload(rows, confirmation.measured, predicted, measured, confirmation, summary)
        out.print(json.dumps(payload, indent=2))
    report.verifying.warn_poor_agreement()
    if not as_json:
        for v in found:
            out.print(v.arch)
    if not found:
        raise LatbenchError(f"no candidate was measured within {result.max_latency_ms} ms")
