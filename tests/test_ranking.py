"""Spearman's rank correlation: average ranks for ties, nan where undefined, equal to scipy's elsewhere."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import rankdata, spearmanr

from latbench.ranking import average_ranks, spearman


def test_ties_share_the_mean_of_their_ranks() -> None:
    assert average_ranks([3.0, 1.0, 3.0, 2.0]).tolist() == [3.5, 1.0, 3.5, 2.0]
    assert average_ranks([5, 5, 5]).tolist() == [2.0, 2.0, 2.0]
    assert spearman([1.0, 2.0, 2.0, 3.0], [1.0, 2.0, 2.0, 3.0]) == pytest.approx(1.0)


def test_a_monotone_transform_keeps_the_ranking() -> None:
    x = np.arange(10.0)
    assert spearman(x, x**3) == pytest.approx(1.0)
    assert spearman(x, -np.exp(x)) == pytest.approx(-1.0)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ([1.0, 2.0, 3.0, 4.0, 5.0], [7.0, 7.0, 7.0, 7.0, 7.0]),  # constant side
        ([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]),
        ([1.0], [2.0]),  # one point
        ([], []),
        ([1.0, np.nan, 3.0], [1.0, 2.0, 3.0]),  # NaN propagates
        ([1.0, 2.0, 3.0], [1.0, 2.0, np.nan]),
    ],
)
def test_no_ranking_gives_nan(a: list[float], b: list[float]) -> None:
    assert math.isnan(spearman(a, b))


def test_two_distinct_points_rank_alike_or_opposite() -> None:
    assert spearman([1.0, 2.0], [3.0, 5.0]) == pytest.approx(1.0)
    assert spearman([1.0, 2.0], [5.0, 3.0]) == pytest.approx(-1.0)


def test_infinities_are_ranked_like_any_value() -> None:
    assert spearman([1.0, 2.0, np.inf], [0.1, 0.2, 0.3]) == pytest.approx(1.0)


def test_mismatched_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="one length"):
        spearman([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="1-D"):
        spearman(np.ones((2, 2)), np.ones((2, 2)))


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_scipy_on_random_data_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 200))
    a = rng.integers(0, 8, n).astype(np.float64)  # few distinct values: many ties
    b = np.round(a + rng.normal(0, 3, n))
    assert np.array_equal(average_ranks(a), rankdata(a))
    assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic, abs=1e-12)
