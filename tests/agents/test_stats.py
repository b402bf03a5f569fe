"""Latency statistics."""

from __future__ import annotations

import numpy as np
import pytest

from latbench.agents.stats import LatencyStats


def test_statistics_of_known_times():
    s = LatencyStats.from_ns([1_000_000, 2_000_000, 3_000_000, 4_000_000, 100_000_000])
    assert s.median_ms == 3.0
    assert s.mean_ms == pytest.approx(22.0)
    assert s.min_ms == 1.0 and s.max_ms == 100.0
    assert s.mad_ms == 1.0
    assert s.std_ms == pytest.approx(np.std([1, 2, 3, 4, 100], ddof=1))
    assert s.cv == pytest.approx(s.std_ms / 22.0)
    assert s.p90_ms == pytest.approx(np.percentile([1, 2, 3, 4, 100], 90))
    assert s.runs == 5


def test_one_run_has_zero_spread_and_no_runs_is_an_error():
    s = LatencyStats.from_ns([2_500_000])
    assert (s.median_ms, s.std_ms, s.cv) == (2.5, 0.0, 0.0)
    with pytest.raises(ValueError):
        LatencyStats.from_ns([])
