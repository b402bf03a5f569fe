"""Latency-constrained search over a space: aging evolution, with random search as its baseline.

Every candidate costs one latency query, so the budget counts queries. Queries are made in batches of a whole
generation because a predictor ranks thousands of architectures at once, and the same code serves a measuring
oracle (one real measurement per new architecture) for the speed comparison in ``benchmarks/nas_speed.py``.
Infeasible candidates (predicted over the limit) rank below every feasible one, by how far over they are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from latbench.errors import LatbenchError
from latbench.progress import Progress, notify
from latbench.search.genome import Genome
from latbench.search.objectives import Objective

LatencyOracle = Callable[[Sequence[str]], np.ndarray]
METHODS = ("evolution", "random")
STALE_ROUNDS = 50
"""Rounds in a row without a new architecture after which a search stops before its budget: the space has fewer
(non-degenerate) members than the budget, or the evolution's population collapsed onto a few architectures whose
every mutation is known, as happens when none is rated within the limit and all crowd the fastest ones."""


@dataclass(frozen=True)
class Candidate:
    arch: str
    latency_ms: float
    score: float

    @property
    def as_dict(self) -> dict[str, object]:
        return {"arch": self.arch, "latency_ms": self.latency_ms, "score": self.score}


@dataclass
class History:
    """Every distinct architecture queried, in the order the search first asked for it."""

    latency: dict[str, float] = field(default_factory=dict)
    score: dict[str, float] = field(default_factory=dict)

    def ask(self, archs: Sequence[str], oracle: LatencyOracle, objective: Objective) -> tuple[np.ndarray, np.ndarray]:
        new = [a for a in dict.fromkeys(archs) if a not in self.latency]
        if new:
            for a, lat, sc in zip(new, oracle(new), objective(new), strict=True):
                self.latency[a] = float(lat)
                self.score[a] = float(sc)
        return np.array([self.latency[a] for a in archs]), np.array([self.score[a] for a in archs])

    def ranked(self) -> list[Candidate]:
        """Every candidate, best objective first (ties: faster first)."""
        found = [Candidate(a, lat, self.score[a]) for a, lat in self.latency.items()]
        return sorted(found, key=lambda c: (-c.score, c.latency_ms))

    def feasible(self, max_latency_ms: float) -> list[Candidate]:
        """Candidates within ``max_latency_ms``, best objective first (ties: faster first)."""
        return [c for c in self.ranked() if c.latency_ms <= max_latency_ms]


def fitness(latency: np.ndarray, score: np.ndarray, max_latency_ms: float) -> np.ndarray:
    """Feasible: the objective's rank value; infeasible: below all feasible, less so when only slightly over."""
    over = latency > max_latency_ms
    lowest = score.min() if len(score) else 0.0
    return np.where(over, lowest - 1.0 - (latency - max_latency_ms) / max(max_latency_ms, 1e-9), score)


def random_search(
    genome: Genome,
    oracle: LatencyOracle,
    objective: Objective,
    max_latency_ms: float,
    budget: int,
    seed: int = 0,
    progress: Progress | None = None,
) -> History:
    """Uniform samples until ``budget`` distinct architectures, or until sampling keeps finding known ones."""
    rng = np.random.default_rng(seed)
    history = History()
    stale = 0
    while len(history.latency) < budget and stale < STALE_ROUNDS:
        before = len(history.latency)
        batch = genome.decode(genome.random(rng, min(256, budget - before)))
        history.ask(batch, oracle, objective)
        stale = stale + 1 if len(history.latency) == before else 0
        notify(progress, "search", len(history.latency), budget)
    return history


def aging_evolution(
    genome: Genome,
    oracle: LatencyOracle,
    objective: Objective,
    max_latency_ms: float,
    budget: int,
    seed: int = 0,
    population: int = 64,
    tournament: int = 8,
    progress: Progress | None = None,
) -> History:
    """Regularised (aging) evolution: tournament parents, one-gene mutations, the oldest members die.

    A generation of ``population // 4`` children is queried at once; the run stops after ``budget`` distinct
    architectures or when mutation keeps proposing known ones (a space smaller than the budget).
    """
    rng = np.random.default_rng(seed)
    history = History()
    members = genome.random(rng, min(population, budget))
    lat, score = history.ask(genome.decode(members), oracle, objective)
    notify(progress, "search", len(history.latency), budget)
    fit = fitness(lat, score, max_latency_ms)
    stale = 0
    while len(history.latency) < budget and stale < STALE_ROUNDS:
        before = len(history.latency)
        n_children = max(1, min(population // 4, budget - before))
        picks = rng.integers(0, len(members), size=(n_children, min(tournament, len(members))))
        parents = members[picks[np.arange(n_children), np.argmax(fit[picks], axis=1)]]
        children = genome.mutate(parents, rng)
        c_lat, c_score = history.ask(genome.decode(children), oracle, objective)
        members = np.concatenate([members, children])[n_children:]
        lat = np.concatenate([lat, c_lat])[n_children:]
        score = np.concatenate([score, c_score])[n_children:]
        fit = fitness(lat, score, max_latency_ms)
        stale = stale + 1 if len(history.latency) == before else 0
        notify(progress, "search", len(history.latency), budget)
    return history


def run_search(
    method: str,
    genome: Genome,
    oracle: LatencyOracle,
    objective: Objective,
    max_latency_ms: float,
    budget: int,
    seed: int = 0,
    progress: Progress | None = None,
) -> History:
    if max_latency_ms <= 0:
        raise LatbenchError(f"the latency limit must be positive, got {max_latency_ms} ms")
    if budget < 1:
        raise LatbenchError(f"the search budget must be at least 1 architecture, got {budget}")
    if method == "evolution":
        return aging_evolution(genome, oracle, objective, max_latency_ms, budget, seed, progress=progress)
    if method == "random":
        return random_search(genome, oracle, objective, max_latency_ms, budget, seed, progress=progress)
    raise LatbenchError(f"unknown search method {method!r}; choose one of: {', '.join(METHODS)}")
