"""Latency-constrained NAS with a latency predictor: search by prediction, then verify by measurement.

``search(predict, space, max_latency_ms)`` runs aging evolution (or random search) with the predictor as the
latency oracle and returns the best feasible architectures; ``verify`` measures them for real and says how far
prediction and hardware agree. ``latbench search`` is the command over both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from latbench.search.evolution import METHODS, Candidate, History, LatencyOracle, run_search
from latbench.search.genome import Genome, genome_of
from latbench.search.objectives import DEFAULT_PROXY, OBJECTIVES, objective


@dataclass(frozen=True)
class SearchResult:
    space: str
    method: str
    objective: str
    max_latency_ms: float
    queried: int
    feasible: int
    finalists: list[Candidate]
    seconds: float


@dataclass(frozen=True)
class Verified:
    """A finalist with its measured latency next to the predicted one."""

    arch: str
    predicted_ms: float
    measured_ms: float
    score: float
    max_latency_ms: float

    @property
    def within_limit(self) -> bool:
        return self.measured_ms <= self.max_latency_ms

    def as_dict(self) -> dict[str, object]:
        return {
            "arch": self.arch,
            "predicted_ms": self.predicted_ms,
            "measured_ms": self.measured_ms,
            "score": self.score,
            "within_limit": self.within_limit,
        }


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
    on_progress: Callable[[int], None] | None = None,
) -> SearchResult:
    """The ``finalists`` best architectures whose predicted latency is within ``max_latency_ms``."""
    import time

    genome = genome_of(space)
    started = time.perf_counter()
    history = run_search(
        method, genome, predict_ms, objective(space, objective_name, proxy), max_latency_ms, budget, seed, on_progress
    )
    feasible = history.feasible(max_latency_ms)
    return SearchResult(
        space=genome.space,
        method=method,
        objective=objective_name,
        max_latency_ms=max_latency_ms,
        queried=len(history.latency),
        feasible=len(feasible),
        finalists=feasible[:finalists],
        seconds=time.perf_counter() - started,
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
        return {"within_limit": float("nan"), "median_abs_rel_error": float("nan")}
    pred = np.array([v.predicted_ms for v in verified])
    meas = np.array([v.measured_ms for v in verified])
    return {
        "within_limit": float(np.mean([v.within_limit for v in verified])),
        "median_abs_rel_error": float(np.median(np.abs(pred - meas) / meas)),
    }


__all__ = [
    "METHODS",
    "OBJECTIVES",
    "Candidate",
    "Genome",
    "History",
    "SearchResult",
    "Verified",
    "agreement",
    "genome_of",
    "run_search",
    "search",
    "verify",
]
