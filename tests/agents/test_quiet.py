"""Waiting for a quiet machine, against real competing processes: a child that busy-loops for a bounded time."""

from __future__ import annotations

import subprocess
import time

import numpy as np
import psutil
import pytest

from latbench.agents.environment import MachineState
from latbench.agents.measure import Attempt, TimingSettings, measure_until_stable
from latbench.agents.quiet import QuietPolicy, others_busy
from latbench.agents.stats import LatencyStats
from tests.support.competitor import LIMIT_CORES, busy_child, cores_of, threshold


def _steady_attempt(number: int) -> Attempt:
    calm = MachineState(0.1, 3000.0, "performance", 50.0, 8.0)
    ns = np.full(5, 1_000_000, dtype=np.int64)
    return Attempt(LatencyStats.from_ns(ns), ns, 0, 0.1, calm, calm)


@pytest.fixture
def child():
    started: list[subprocess.Popen[bytes]] = []
    yield lambda seconds: started.append(busy_child(seconds)) or started[-1]
    for proc in started:
        proc.kill()
        proc.wait()


@pytest.mark.slow
def test_waits_while_a_competing_process_runs_and_measures_after_it_exits(child):
    busy = child(2.0)
    quiet = QuietPolicy(threshold=threshold(), max_wait_s=20.0, first_backoff_s=0.2, reading=cores_of(busy))
    started = time.monotonic()
    m = measure_until_stable(_steady_attempt, TimingSettings(), quiet)
    assert busy.poll() is not None  # it measured only after the competitor was gone
    assert 1.0 <= m.idle_waited_s <= time.monotonic() - started < 15.0
    assert m.stable and "waited_idle" in m.flags and "still_busy" not in m.flags
    assert m.idle_load == 0.0


@pytest.mark.slow
def test_measures_after_the_bound_when_the_machine_stays_busy(child):
    busy = child(30.0)
    quiet = QuietPolicy(threshold=threshold(), max_wait_s=1.0, first_backoff_s=0.2, reading=cores_of(busy))
    m = measure_until_stable(_steady_attempt, TimingSettings(), quiet)
    assert busy.poll() is None
    assert 1.0 <= m.idle_waited_s < 5.0  # the bound and one last reading, late on a busy machine; not the 30 s
    assert "still_busy" in m.flags and "waited_idle" not in m.flags
    assert m.idle_load is not None and m.idle_load > LIMIT_CORES


def test_a_quiet_reading_does_not_wait():
    quiet = QuietPolicy(threshold=0.5, reading=lambda interval_s: 0.0)
    m = measure_until_stable(_steady_attempt, TimingSettings(), quiet)
    assert m.idle_waited_s == 0.0 and m.flags == [] and m.idle_load == 0.0


@pytest.mark.slow
def test_the_default_reading_counts_a_competing_process(child):
    busy = child(5.0)
    seen = others_busy(0.5)
    got = cores_of(busy)(0.5)
    assert seen is not None and 0.0 <= seen <= (psutil.cpu_count() or 1) + 0.1
    assert got > 0.05 and seen >= 0.5 * got  # the child's work is counted (the machine's other load may add to it)
