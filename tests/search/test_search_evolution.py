"""Latency-constrained search: genomes, the constraint, evolution against random search, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from latbench.errors import LatbenchError, UnknownSpace
from latbench.search import agreement, genome_of, search, verify
from latbench.search.evolution import fitness
from latbench.spaces import get_space


def flops_latency(space: str):
    """A latency stand-in that grows with compute and size, so the constraint and objective pull apart."""
    s = get_space(space)

    def oracle(archs):
        costs = [s.costs(a) for a in archs]
        return np.array([0.5 + c.macs / 2e7 + c.params / 4e6 for c in costs])

    return oracle


@pytest.mark.parametrize("space", ["nb201", "fbnet"])
def test_genomes_round_trip_and_mutate_one_gene(space: str) -> None:
    genome = genome_of(space)
    rng = np.random.default_rng(0)
    parents = genome.random(rng, 200)
    archs = genome.decode(parents)
    assert all(get_space(space).canonical(a) == a for a in archs)
    assert np.array_equal(genome.encode(archs), parents)
    children = genome.mutate(parents, rng)
    assert np.all((children != parents).sum(axis=1) == 1)
    assert children.min() >= 0 and np.all(children < genome.choices)


def test_infeasible_ranks_below_every_feasible_and_closer_is_better() -> None:
    latency = np.array([1.0, 2.0, 5.0, 3.0])
    score = np.array([10.0, 1.0, 100.0, 100.0])
    fit = fitness(latency, score, max_latency_ms=2.0)
    assert fit[2] < fit[1] and fit[3] < fit[1]
    assert fit[3] > fit[2]
    assert fit[0] > fit[1]


@pytest.mark.parametrize("method", ["evolution", "random"])
def test_finalists_respect_the_limit_and_are_best_first(method: str) -> None:
    oracle = flops_latency("nb201")
    result = search(oracle, "nb201", 1.5, method=method, budget=600, finalists=5, seed=1)
    assert result.queried == 600
    assert len(result.finalists) == 5
    assert all(c.latency_ms <= 1.5 for c in result.finalists)
    scores = [c.score for c in result.finalists]
    assert scores == sorted(scores, reverse=True)
    assert len({c.arch for c in result.finalists}) == 5


@pytest.mark.slow
def test_evolution_beats_random_search_on_a_large_space() -> None:
    oracle = flops_latency("fbnet")
    limit = float(np.percentile(oracle(get_space("fbnet").sample(1000, seed=9)), 25))
    means = {}
    for method in ("evolution", "random"):
        runs = [search(oracle, "fbnet", limit, method=method, budget=3000, seed=s) for s in range(3)]
        means[method] = np.mean([np.mean([c.score for c in r.finalists]) for r in runs])
    assert means["evolution"] > 1.05 * means["random"]


def test_same_seed_same_search() -> None:
    oracle = flops_latency("fbnet")
    a = search(oracle, "fbnet", 4.0, budget=400, seed=3)
    b = search(oracle, "fbnet", 4.0, budget=400, seed=3)
    c = search(oracle, "fbnet", 4.0, budget=400, seed=4)
    assert a.finalists == b.finalists
    assert a.finalists != c.finalists


def test_verify_pairs_prediction_with_measurement() -> None:
    oracle = flops_latency("nb201")
    result = search(oracle, "nb201", 1.5, budget=300, finalists=3)
    measured = {c.arch: c.latency_ms * f for c, f in zip(result.finalists, (0.9, 1.1, 2.0))}
    rows = verify(result, measured)
    assert [r.within_limit for r in rows] == [r.measured_ms <= 1.5 for r in rows]
    summary = agreement(rows)
    assert summary["median_rel_error"] == pytest.approx(np.median([0.1 / 0.9, 0.1 / 1.1, 1.0 / 2.0]))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_latency_ms": 0.0}, "latency limit must be positive"),
        ({"budget": 0}, "budget must be at least 1"),
        ({"method": "annealing"}, "unknown search method"),
        ({"objective_name": "accuracy"}, "unknown objective"),
    ],
)
def test_bad_search_settings_are_refused(kwargs: dict, message: str) -> None:
    settings = {"max_latency_ms": 1.0, **kwargs}
    with pytest.raises(LatbenchError, match=message):
        search(flops_latency("nb201"), "nb201", **settings)


def test_unknown_space_is_refused() -> None:
    with pytest.raises(UnknownSpace):
        genome_of("darts")


@pytest.mark.parametrize("method", ["evolution", "random"])
@pytest.mark.slow
def test_a_budget_beyond_the_space_stops_when_nothing_new_is_found(method: str) -> None:
    result = search(flops_latency("nb201"), "nb201", 100.0, method=method, budget=20_000, seed=0)
    assert result.queried <= 15_625
