"""What a result records beyond its latency: load and first-run times, peak memory, what --wait-idle waited, and
the per-operator profile, measured with the real runtimes and real competing processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest

from latbench import profiles
from latbench.agents.measure import TimingSettings, load_cold, time_model
from latbench.agents.quiet import QuietPolicy
from latbench.agents.runtimes.onnxruntime import OnnxRuntime
from latbench.agents.runtimes.tflite import TfliteRuntime
from latbench.errors import ProfilingUnsupported
from latbench.local import measure
from latbench.resultfile import read_results
from tests.support.competitor import LIMIT_CORES, busy_child, cores_of, threshold

FAST = TimingSettings(warmup_runs=2, warmup_time_s=0.0, min_runs=10, min_time_s=0.02, max_time_s=2.0, max_attempts=1)


def one(**kw: Any) -> list[dict[str, Any]]:
    """``measure``'s rows, typed for the asserts on their values."""
    return measure(**kw)


class CountingOrt(OnnxRuntime):
    """ONNX Runtime that counts the profiles it is asked for."""

    profiled = 0

    def profile(self, runs: int = 10, warmup: int = 3) -> profiles.OpProfile:
        CountingOrt.profiled += 1
        return super().profile(runs, warmup)


class Allocating(OnnxRuntime):
    """ONNX Runtime whose every run also touches ``mb`` MiB of fresh memory: a model with a large working set."""

    mb = 0

    def run(self) -> None:
        super().run()
        np.ones(self.mb << 17)  # float64: 8 bytes each


@pytest.mark.slow
def test_a_measured_model_records_its_load_first_run_and_peak_memory(conv_model: Path, tmp_path: Path):
    [row] = one(models=[conv_model], settings=FAST, reference=False, out=tmp_path / "r.csv")
    assert row["load_ms"] > 0 and row["first_run_ms"] >= 0 and row["peak_rss_mb"] > 0
    assert row["idle_waited_s"] == 0.0 and row["idle_load"] is None and row["profile"] is None
    assert psutil.Process().memory_info().rss / 2**20 < row["peak_rss_mb"] * 3  # MiB of this process, not bytes
    [stored] = read_results(tmp_path / "r.csv")
    assert {k: stored[k] for k in ("load_ms", "first_run_ms", "peak_rss_mb")} == {
        k: row[k] for k in ("load_ms", "first_run_ms", "peak_rss_mb")
    }
    assert not profiles.profiles_dir(tmp_path / "r.csv").exists()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="a resettable peak is Linux's")
def test_the_peak_memory_is_that_of_the_timed_runs_not_of_an_earlier_larger_model(conv_model: Path):
    engine = Allocating()
    peaks = []
    for mb in (400, 0):
        Allocating.mb = mb
        engine.load(conv_model)
        peaks.append(time_model(engine, FAST).peak_rss_mb)
        engine.close()
    big, small = peaks
    assert big is not None and small is not None
    assert big - small > 300  # Linux resets the high-water mark before each attempt


@pytest.mark.slow
def test_load_cold_times_loading_and_the_first_run_and_time_model_keeps_them(conv_model: Path):
    engine = OnnxRuntime()
    cold = load_cold(engine, conv_model)
    m = time_model(engine, FAST, cold=cold)
    engine.close()
    assert cold.load_ms > 0 and cold.first_run_ms > 0
    assert (m.load_ms, m.first_run_ms) == (cold.load_ms, cold.first_run_ms)


@pytest.mark.slow
def test_profile_off_runs_no_profiler_and_on_profiles_once_after_timing(conv_model: Path):
    engine = CountingOrt()
    engine.load(conv_model)
    CountingOrt.profiled = 0
    assert time_model(engine, FAST).profile is None and CountingOrt.profiled == 0
    m = time_model(engine, TimingSettings(**{**FAST.__dict__, "profile_runs": 4}))
    engine.close()
    assert CountingOrt.profiled == 1 and m.profile is not None and m.profile.runs == 4
    assert "Conv" in {o.op for o in m.profile.ops}  # Relu is fused into it at optimisation level "all"
    assert all(o.ms >= 0 and o.calls == 1 for o in m.profile.ops) and m.profile.total_ms > 0


@pytest.mark.slow
def test_measure_with_profile_stores_it_beside_the_results_file_by_op_type(conv_model: Path, tmp_path: Path):
    out = tmp_path / "r.parquet"
    settings = TimingSettings(**{**FAST.__dict__, "profile_runs": 3})
    [row] = measure(models=[conv_model], settings=settings, reference=False, out=out)
    assert isinstance(row["profile"], str) and row["profile"].endswith(".json.gz")
    assert (profiles.profiles_dir(out) / row["profile"]).is_file()
    [stored] = read_results(out)
    profile = profiles.load(out, stored)
    assert profile is not None and profile.runtime == "onnxruntime" and profile.runs == 3
    types = profiles.by_op_type(profile)
    assert types[0].op == "Conv" and types[0].nodes == 1
    assert abs(sum(t.share for t in types) - 1.0) < 1e-3


def test_a_runtime_without_a_profiler_is_refused_before_anything_is_timed(tmp_path: Path):
    settings = TimingSettings(**{**FAST.__dict__, "profile_runs": 3})
    with pytest.raises(ProfilingUnsupported, match="profiling not supported by runtime tflite"):
        measure(models=[tmp_path / "m.tflite"], runtime="tflite", settings=settings, out=tmp_path / "r.csv")
    assert not TfliteRuntime.can_profile() and OnnxRuntime.can_profile()
    assert not (tmp_path / "r.csv").exists()


@pytest.mark.slow
def test_the_row_records_the_wait_for_a_competing_process_that_never_stops(conv_model: Path):
    child = busy_child(None)
    try:
        quiet = QuietPolicy(threshold=threshold(), max_wait_s=1.0, reading=cores_of(child))
        [row] = one(models=[conv_model], settings=FAST, reference=False, quiet=quiet)
    finally:
        child.kill()
        child.wait()
    assert 1.0 <= row["idle_waited_s"] < 5.0
    assert row["idle_load"] is not None and row["idle_load"] > LIMIT_CORES
    assert "still_busy" in str(row["flags"]).split(",")


@pytest.mark.slow
def test_the_row_records_a_short_wait_for_a_competing_process_that_stops(conv_model: Path):
    child = busy_child(1.0)
    try:
        quiet = QuietPolicy(threshold=threshold(), max_wait_s=20.0, reading=cores_of(child))
        [row] = one(models=[conv_model], settings=FAST, reference=False, quiet=quiet)
    finally:
        child.kill()
        child.wait()
    assert 0.3 <= row["idle_waited_s"] < 10.0 and row["idle_load"] == 0.0
    assert "waited_idle" in str(row["flags"]).split(",")
