"""Samplers: distinct picks, reproducible, and the encoding sampler covers the cost range."""

from __future__ import annotations

import numpy as np
import pytest

from latbench.predictor import PredictorError, suggest
from latbench.predictor.features import codes, cost_features
from latbench.predictor.samplers import kmeans, sample_indices
from latbench.spaces import get_space


@pytest.mark.parametrize("method", ["random", "encoding"])
def test_samplers_pick_distinct_architectures_reproducibly(method: str) -> None:
    archs = get_space("nb201").archs()  # type: ignore[attr-defined]
    a = sample_indices("nb201", archs, 20, method, seed=1)
    assert len(set(a.tolist())) == 20 and a.min() >= 0 and a.max() < len(archs)
    assert np.array_equal(a, sample_indices("nb201", archs, 20, method, seed=1))
    assert not np.array_equal(a, sample_indices("nb201", archs, 20, method, seed=2))


def test_encoding_sampler_covers_the_cost_range() -> None:
    archs = get_space("nb201").archs()  # type: ignore[attr-defined]
    macs = cost_features("nb201", codes("nb201", archs))[:, 0]
    decile = np.digitize(macs, np.quantile(macs, np.linspace(0.1, 0.9, 9)))
    covered = [len(set(decile[sample_indices("nb201", archs, 20, "encoding", seed=s)])) for s in range(3)]
    assert min(covered) >= 6
    picked = macs[sample_indices("nb201", archs, 20, "encoding", seed=0)]
    assert picked.min() <= np.quantile(macs, 0.1) and picked.max() >= np.quantile(macs, 0.9)


def test_kmeans_finds_separated_clusters() -> None:
    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(0, 0.1, (50, 2)), rng.normal(5, 0.1, (50, 2))]
    centres = kmeans(x, 2, seed=0)
    assert sorted(np.round(centres[:, 0]).tolist()) == [0.0, 5.0]


def test_suggest_gives_valid_archs_of_each_space() -> None:
    for space in ("nb201", "fbnet"):
        picked = suggest(space, 8, seed=0)
        assert len(set(picked)) == 8
        assert get_space(space).canonical_many(picked) == picked


def test_sampler_errors_are_clear() -> None:
    with pytest.raises(PredictorError, match="unknown sampler"):
        suggest("nb201", 5, "grid")
    with pytest.raises(PredictorError, match="cannot pick"):
        sample_indices("nb201", ["a"], 5)
