"""Latency-constrained NAS with a latency predictor: search by prediction, then confirm by measurement.

``search(predict, space, max_latency_ms)`` runs aging evolution (or random search) with the predictor as the
latency oracle and returns the best feasible architectures; ``confirm`` measures the best candidates near the
limit until enough run within it for real; ``verify`` pairs the predicted finalists with measurements and
``agreement`` says how far prediction and hardware agree. ``latbench search`` is the command over them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from latbench.predictor.out_of_fold import out_of_fold as cross_validated_errors
from latbench.progress import Progress
from latbench.search.confirm import Confirmation, Measure, confirm
from latbench.search.evolution import METHODS, Candidate, History, LatencyOracle, run_search
from latbench.search.genome import Genome, genome_of
from latbench.search.margin import error_margin
from latbench.search.objectives import DEFAULT_PROXY, OBJECTIVES, objective
from latbench.search.results import SearchResult, Verified


def search(
    predict_ms: LatencyOracle,
    space: str,
    max_latency_ms: float,
    *,
    objective_name: str = "params",
    proxy: str = DEFAULT_PROXY,
    method: str = "evolution",
    budget: int = 2000,
    finalists: int = 5,
    seed: int = 0,
    progress: Progress | None = None,
) -> SearchResult:
    """The ``finalists`` best architectures whose predicted latency is within ``max_latency_ms``; ``progress``
    hears stage ``search`` count the architectures rated."""
    import time

    genome = genome_of(space)
    started = time.perf_counter()
    history = run_search(
        method, genome, predict_ms, objective(space, objective_name, proxy), max_latency_ms, budget, seed, progress
    )
    feasible = history.feasible(max_latency_ms)
    return SearchResult(
        space=genome.space,
        method=method,
        objective=objective_name,
        max_latency_ms=max_latency_ms,
        budget=budget,
        queried=len(history.latency),
        feasible=len(feasible),
        finalists=feasible[:finalists],
        seconds=time.perf_counter() - started,
        history=history,
    )


def verify(result: SearchResult, measured_ms: dict[str, float]) -> list[Verified]:
    """Pair each finalist's prediction with its measurement (finalists that failed to measure are left out)."""
    return [
        Verified(c.arch, c.latency_ms, measured_ms[c.arch], c.score, result.max_latency_ms)
        for c in result.finalists
        if c.arch in measured_ms
    ]


def agreement(verified: Sequence[Verified]) -> dict[str, float]:
    """How prediction held up: share within the limit when measured, and the median relative error."""
    if not verified:
        return {"within_limit": float("nan"), "median_rel_error": float("nan")}
    pred = np.array([v.predicted_ms for v in verified])
    meas = np.array([v.measured_ms for v in verified])
    return {
        "within_limit": float(np.mean([v.within_limit for v in verified])),
        "median_rel_error": float(np.median(np.abs(pred - meas) / meas)),
    }


POOR_AGREEMENT = 0.5
"""A median relative error above which ``agreement_warning`` warns: the predictions are not this hardware's."""


def agreement_warning(summary: dict[str, float]) -> str | None:
    """A warning when the median relative error of ``agreement`` is over ``POOR_AGREEMENT``, else None."""
    error = summary["median_rel_error"]
    if not error > POOR_AGREEMENT:
        return None
    return (
        f"predicted and measured latencies differ by {error:.0%} (median): the predictor does not describe what "
        "was measured (another batch, runtime, precision or device than its samples?), so the search ranked by "
        'wrong latencies and "within the limit" rests on the few measurements alone'
    )


__all__ = [
    "METHODS",
    "OBJECTIVES",
    "POOR_AGREEMENT",
    "Candidate",
    "Confirmation",
    "Genome",
    "History",
    "Measure",
    "SearchResult",
    "Verified",
    "agreement",
    "agreement_warning",
    "confirm",
    "cross_validated_errors",
    "error_margin",
    "genome_of",
    "run_search",
    "search",
    "verify",
]
