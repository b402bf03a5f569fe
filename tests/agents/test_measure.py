"""The measurement loop: counts and times it promises, statistics, and the stability checks."""

from __future__ import annotations

import time

import numpy as np
import pytest

from latbench.agents.environment import MachineState, changed
from latbench.agents.measure import MeasureSettings, ReferenceProbe, measure, time_runs
from latbench.agents.runtimes.onnxruntime import OnnxRuntime
from tests.support.models import make_conv_model

FAST = MeasureSettings(warmup_runs=5, warmup_time_s=0.02, min_runs=20, min_time_s=0.05, max_time_s=2.0)


def test_time_runs_meets_both_minimums():
    calls = []
    timing = time_runs(lambda: calls.append(time.sleep(0.001)), FAST)
    assert timing.warmup_runs >= 5
    assert len(timing.times_ns) >= 20
    assert timing.times_ns.sum() >= 0.05e9
    assert len(calls) == timing.warmup_runs + len(timing.times_ns)
    assert (timing.times_ns >= 1_000_000).all()


def test_time_runs_stops_at_the_time_cap():
    settings = MeasureSettings(warmup_runs=0, warmup_time_s=0, min_runs=10_000, min_time_s=0.0, max_time_s=0.05)
    timing = time_runs(lambda: time.sleep(0.002), settings)
    assert len(timing.times_ns) < 10_000
    assert 0.05 <= timing.wall_s < 0.5


def test_settings_reject_nonsense():
    with pytest.raises(ValueError):
        MeasureSettings(min_runs=0)
    with pytest.raises(ValueError):
        MeasureSettings(min_time_s=5, max_time_s=1)


def test_measures_a_real_model_and_keeps_every_run(conv_model):
    with OnnxRuntime() as rt:
        rt.load(conv_model)
        m = measure(rt, FAST)
    assert m.stats.runs == len(m.times_ns) >= 20
    assert m.stats.min_ms <= m.stats.median_ms <= m.stats.max_ms
    assert m.state_before is not None and m.state_after is not None
    assert 1 <= m.attempts <= FAST.max_attempts


def test_high_spread_is_remeasured_then_flagged(conv_model):
    strict = MeasureSettings(
        warmup_runs=2, warmup_time_s=0, min_runs=20, min_time_s=0.01, max_time_s=1, cv_threshold=1e-9, max_attempts=2
    )
    with OnnxRuntime() as rt:
        rt.load(conv_model)
        m = measure(rt, strict)
    assert m.attempts == 2
    assert not m.stable and "high_cv" in m.flags


def test_reference_drift_is_remeasured_then_flagged(tmp_path, conv_model):
    make_conv_model(tmp_path / "big.onnx", channels=96)
    with OnnxRuntime() as rt, OnnxRuntime() as ref:
        rt.load(conv_model)
        ref.load(conv_model)
        probe = ReferenceProbe(ref, calibrate_s=0.05)
        assert 0.25 < probe.ratio() < 4.0  # the same model: near 1 (loose, for a busy machine)
        ref.load(tmp_path / "big.onnx")  # from now on the reference runs much slower than at calibration
        m = measure(rt, MeasureSettings(**{**FAST.__dict__, "cv_threshold": 10.0, "max_attempts": 2}), probe)
    assert "drift" in m.flags and not m.stable and m.attempts == 2
    assert len(m.attempt_flags) == 2 and all("drift" in flags for flags in m.attempt_flags)
    assert m.ref_ratio is not None and m.ref_ratio > 2


def test_one_unlucky_calibration_is_outvoted(tmp_path):
    make_conv_model(tmp_path / "big.onnx", channels=192)
    make_conv_model(tmp_path / "small.onnx", channels=24)
    with OnnxRuntime() as ref:
        ref.load(tmp_path / "big.onnx")
        probe = ReferenceProbe(ref, calibrate_s=0.05)  # calibrated while the machine was "slow"
        ref.load(tmp_path / "small.onnx")
        first = probe.ratio()
        later = [probe.ratio() for _ in range(10)]
    settled = float(np.median(later[-5:]))
    assert first < 0.5  # the first readings after the glitch look like drift...
    assert abs(np.log(settled)) < abs(np.log(first)) / 2  # ...until the readings outvote the calibration


def test_machine_changes_are_reasons():
    base = MachineState(
        load_1m=0.1, cpu_freq_mhz=3000.0, governor="performance", temperature_c=50.0, memory_available_gb=8.0
    )
    assert changed(base, base) == []
    slower = MachineState(**{**base.__dict__, "cpu_freq_mhz": 2000.0})
    assert changed(base, slower) == ["frequency_changed"]
    other = MachineState(**{**base.__dict__, "governor": "powersave", "load_1m": 50.0})
    assert set(changed(base, other)) == {"governor_changed", "load_rose"}
