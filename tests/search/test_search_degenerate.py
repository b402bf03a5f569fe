"""No search method proposes, rates or confirms a degenerate architecture, and capacity ignores dead branches."""

from __future__ import annotations

import numpy as np
import pytest

from latbench.search import confirm, genome_of, search
from latbench.search.objectives import objective
from latbench.spaces import get_space

NB201 = get_space("nb201")


def fast_when_cut(archs: list[str]) -> np.ndarray:
    """A latency that makes degenerate cells the fastest, so a search that could propose them would keep them."""
    return np.array([0.1 if NB201.is_degenerate(a) else 0.5 + NB201.costs(a).macs / 2e7 for a in archs])


def test_random_draws_and_mutations_are_never_degenerate() -> None:
    genome = genome_of("nb201")
    rng = np.random.default_rng(0)
    parents = genome.random(rng, 2000)
    assert len(parents) == 2000 and not any(NB201.is_degenerate(a) for a in genome.decode(parents))
    for _ in range(5):
        children = genome.mutate(parents, rng)
        assert not any(NB201.is_degenerate(a) for a in genome.decode(children))
        assert np.all((children != parents).sum(axis=1) == 1)
        parents = children


@pytest.mark.parametrize("method", ["evolution", "random"])
def test_no_search_method_rates_a_degenerate_cell(method: str) -> None:
    result = search(fast_when_cut, "nb201", 1.2, method=method, budget=1500, finalists=5, seed=0)
    assert result.queried == 1500 and result.finalists
    assert not any(NB201.is_degenerate(a) for a in result.history.latency)
    measured = {a: float(v) for a, v in zip(result.history.latency, fast_when_cut(list(result.history.latency)))}
    confirmed = confirm(result, lambda archs: {a: measured[a] for a in archs}, budget=10)
    assert confirmed.finalists and not any(NB201.is_degenerate(v.arch) for v in confirmed.measured)


@pytest.mark.parametrize(("name", "field"), [("params", "params"), ("flops", "macs")])
def test_capacity_objectives_do_not_count_dead_branches(name: str, field: str) -> None:
    dead_branch = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
    live = "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
    score = objective("nb201", name)([dead_branch, live])
    assert score[0] == score[1] == getattr(NB201.costs(live), field)
