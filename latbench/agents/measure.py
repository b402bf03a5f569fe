"""The measurement loop: warm-up, timed runs until a minimum count and time, statistics, stability checks.

Only the runtime call sits between the two ``perf_counter_ns`` readings. A result is re-measured when its
spread is too high, its own runs changed speed part-way, the machine changed under it (frequency, governor,
load), or a fixed reference model timed between measurements says the whole machine drifted; it is flagged
unstable if that persists. These are within-process checks: a process that is uniformly slow from its first run
to its last passes them (docs/measurement.md, "What `stable` does not check").
``measure_until_stable`` is that re-measuring, for any way of timing one attempt: ``time_model`` times a model
loaded here, the remote benchmark binaries time theirs on a device.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from latbench.agents.environment import MachineState, changed, machine_state
from latbench.agents.memory import peak_rss_mb, reset_peak
from latbench.agents.quiet import QuietPolicy, Wait
from latbench.agents.runtimes.base import Runtime
from latbench.agents.stats import MAD_TO_SIGMA, LatencyStats
from latbench.errors import ProfilingUnsupported
from latbench.profiles import OpProfile


@dataclass(frozen=True)
class TimingSettings:
    """How long to warm up and time, and when a result counts as unstable. Defaults follow the docs."""

    warmup_runs: int = 10
    warmup_time_s: float = 0.5
    min_runs: int = 50
    min_time_s: float = 1.0
    max_time_s: float = 30.0
    cv_threshold: float = 0.2
    drift_tolerance: float = 0.15
    max_attempts: int = 3
    cooldown_s: float = 0.0
    profile_runs: int = 0
    """Runs of a per-operator profile taken after the timed runs (``Runtime.profile``); 0: no profile, no profiler."""

    def __post_init__(self) -> None:
        if self.warmup_runs < 0 or self.warmup_time_s < 0:
            raise ValueError("warm-up runs and time must not be negative")
        if self.min_runs < 1:
            raise ValueError(f"min_runs must be at least 1, got {self.min_runs}")
        if self.min_time_s < 0 or self.max_time_s <= 0 or self.max_time_s < self.min_time_s:
            raise ValueError(
                f"need 0 <= min_time_s <= max_time_s and max_time_s > 0, got {self.min_time_s} and {self.max_time_s}"
            )
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.profile_runs < 0:
            raise ValueError(f"profile_runs must not be negative, got {self.profile_runs}")
        if self.cv_threshold <= 0 or self.drift_tolerance <= 0:
            raise ValueError("cv_threshold and drift_tolerance must be positive")


@dataclass(frozen=True)
class Timing:
    """The raw outcome of one timing pass."""

    times_ns: np.ndarray
    warmup_runs: int
    wall_s: float


MAX_RUNS = 500_000
"""The most timed runs one measurement keeps: what a result may carry (``protocol.MAX_RUNS_PER_RESULT``, held
equal by a test; this module travels to devices without the protocol). Minutes of a microsecond model reach it."""


def time_runs(run: Callable[[], None], settings: TimingSettings) -> Timing:
    """Warm up, then time ``run`` until the runs reach both the minimum count and time (or the time cap, or
    ``MAX_RUNS``)."""
    started = time.perf_counter()
    warm_until = started + settings.warmup_time_s
    warm_cap = started + settings.max_time_s
    warm = 0
    while warm < settings.warmup_runs or time.perf_counter() < warm_until:
        run()
        warm += 1
        if time.perf_counter() > warm_cap:
            break
    min_ns = int(settings.min_time_s * 1e9)
    max_ns = int(settings.max_time_s * 1e9)
    times: list[int] = []
    clock = time.perf_counter_ns
    first = clock()
    timed = 0
    while True:
        t0 = clock()
        run()
        t1 = clock()
        times.append(t1 - t0)
        timed += t1 - t0
        if (len(times) >= settings.min_runs and timed >= min_ns) or t1 - first >= max_ns or len(times) >= MAX_RUNS:
            break
    return Timing(np.asarray(times, dtype=np.int64), warm, time.perf_counter() - started)


class ReferenceProbe:
    """Times a fixed reference model between measurements to catch a machine whose speed drifts.

    A high CV inside one measurement misses a machine that is uniformly slow for a minute (a noisy neighbour,
    a frequency change); the reference, timed briefly before and after each measurement, does not. Its
    baseline is the median of every reading so far, calibration included: a transient slowdown stands out,
    while one unlucky calibration cannot condemn a whole run.
    """

    def __init__(
        self, runtime: Runtime, probe_runs: int = 15, probe_time_s: float = 0.02, calibrate_s: float = 0.5
    ) -> None:
        self.runtime = runtime
        self._last: tuple[float, float] | None = None
        self._probe = TimingSettings(
            warmup_runs=3,
            warmup_time_s=0.0,
            min_runs=probe_runs,
            min_time_s=probe_time_s,
            max_time_s=max(probe_time_s * 10, 1.0),
        )
        calibration = TimingSettings(
            warmup_runs=10,
            warmup_time_s=0.3,
            min_runs=50,
            min_time_s=calibrate_s,
            max_time_s=max(calibrate_s, 5.0),
        )
        times = time_runs(runtime.run, calibration).times_ns
        chunks = np.array_split(times, max(1, min(3, len(times) // 10)))
        self._readings: list[float] = [float(np.median(c)) / 1e6 for c in chunks]

    @property
    def baseline_ms(self) -> float:
        return float(np.median(self._readings))

    @property
    def noise(self) -> float:
        """How much the readings so far vary, relative to the baseline (1.4826 * MAD / median). Above the drift
        tolerance the probe cannot tell drift from its own noise (on a shared VM, probes between a user's model's
        runs read 0.92-1.46), and the attempt is flagged ``drift``."""
        readings = np.asarray(self._readings)
        return MAD_TO_SIGMA * float(np.median(np.abs(readings - self.baseline_ms))) / self.baseline_ms

    def ratio(self) -> float:
        """Reference latency now over its baseline (1.0 = no drift)."""
        reading = float(np.median(time_runs(self.runtime.run, self._probe).times_ns)) / 1e6
        ratio = reading / self.baseline_ms
        self._readings.append(reading)
        self._last = (time.perf_counter(), ratio)
        return ratio

    def recent_ratio(self, max_age_s: float = 0.5) -> float:
        """The last ratio if it was taken within ``max_age_s`` (the previous measurement's closing probe
        doubles as the next one's opening probe), else a fresh one."""
        if self._last is not None and time.perf_counter() - self._last[0] <= max_age_s:
            return self._last[1]
        return self.ratio()


@dataclass
class Measurement:
    """One architecture's measured latency with everything needed to judge and reproduce it."""

    stats: LatencyStats
    times_ns: np.ndarray
    warmup_runs: int
    wall_s: float
    attempts: int
    stable: bool
    flags: list[str] = field(default_factory=list)
    attempt_flags: list[list[str]] = field(default_factory=list)
    ref_ratio: float | None = None
    state_before: MachineState | None = None
    state_after: MachineState | None = None
    idle_waited_s: float = 0.0
    """Seconds spent waiting for quiet before all attempts (``QuietPolicy``)."""
    idle_load: float | None = None
    """Cores other processes kept busy when the kept attempt started (with a ``QuietPolicy``)."""
    load_ms: float | None = None
    """Loading the model (session creation, for TVM compilation when not cached), if the caller timed it."""
    first_run_ms: float | None = None
    """The first, cold inference after loading, if the caller timed it."""
    peak_rss_mb: float | None = None
    """Peak resident memory of the measuring process during the kept attempt's runs (None where unknown)."""
    profile: OpProfile | None = None
    """The per-operator profile taken after the timed runs (``TimingSettings.profile_runs``)."""


@dataclass(frozen=True)
class Attempt:
    """What one timing pass saw. ``ratios`` are the reference probe's readings around it (none without a probe);
    ``notes`` are informational flags the result carries that do not make it unstable."""

    stats: LatencyStats
    times_ns: np.ndarray
    warmup_runs: int
    wall_s: float
    before: MachineState
    after: MachineState
    ratios: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    peak_rss_mb: float | None = None
    ratio_noise: float = 0.0
    """The reference probe's own reading-to-reading variation (``ReferenceProbe.noise``)."""


SIGMAS = 3.0
"""How many standard errors a difference must exceed to count as a change rather than noise (0.3% of noise
readings exceed it, two-sided, where readings are normal)."""

PARTS = 3
"""``shifted`` compares the medians of the timed runs cut into this many consecutive parts."""


def shift(times_ns: np.ndarray, tolerance: float) -> float | None:
    """How far apart (max / min - 1) the medians of the runs' ``PARTS`` consecutive parts are, when that is
    beyond both ``tolerance`` and ``SIGMAS`` standard errors of a difference of two such medians; else None.

    The model's own opening and closing runs catch what the reference probe cannot: a slowdown that hits this
    model and not the reference cell (memory bandwidth taken by a neighbour), or one that starts or ends inside
    the attempt. The standard error of a part's median is about 1.2533 * sigma / sqrt(n) with sigma the runs'
    robust spread, so a short, noisy attempt is not flagged for what its parts' medians vary by anyway."""
    if len(times_ns) < 2 * PARTS:
        return None
    parts = np.array_split(np.asarray(times_ns, dtype=np.float64), PARTS)
    medians = np.array([np.median(p) for p in parts])
    if medians.min() <= 0:
        return None
    median = float(np.median(times_ns))
    sigma = MAD_TO_SIGMA * float(np.median(np.abs(np.asarray(times_ns) - median))) / median
    standard_error = np.sqrt(2.0) * 1.2533 * sigma / np.sqrt(min(len(p) for p in parts))
    gap = float(medians.max() / medians.min() - 1.0)
    return gap if gap > max(tolerance, SIGMAS * standard_error) else None


def _problems(attempt: Attempt, settings: TimingSettings) -> list[str]:
    """An attempt's problems. ``high_cv`` judges the robust CV (``LatencyStats.robust_cv``), not ``cv``: the
    question is whether the median can be trusted, and a few preempted runs do not move it; a quarter of the runs
    disturbed do. ``drift``: a reference reading off by more than the tolerance, or the probe's own noise above it
    (a probe that varies more than it is meant to detect cannot vouch for the machine). Not a reading beyond some
    multiple of that noise: beside a competitor that never stops, such a rule passed 2% of results 36% slower than
    the quiet pass unflagged where the tolerance alone flagged 38% (docs/benchmarks.md, "Busy devices")."""
    flags = []
    if attempt.stats.spread > settings.cv_threshold:
        flags.append("high_cv")
    if shift(attempt.times_ns, settings.drift_tolerance) is not None:
        flags.append("shifted")
    flags += changed(attempt.before, attempt.after)
    tolerance = settings.drift_tolerance
    if attempt.ratios and (attempt.ratio_noise > tolerance or any(abs(r - 1.0) > tolerance for r in attempt.ratios)):
        flags.append("drift")
    return flags


def measure_until_stable(
    attempt: Callable[[int], Attempt], settings: TimingSettings, quiet: QuietPolicy | None = None
) -> Measurement:
    """Call ``attempt`` (with its number, from 1) up to ``max_attempts`` times while its result is unstable; keep
    the attempt with the fewest problems, then the lowest robust CV, with every attempt's problems and the total
    wall time.

    With ``quiet``, each attempt first waits for other programs to calm down; the kept attempt's flags say
    whether it waited (``waited_idle``) or gave up waiting (``still_busy``), and the result how long in all.
    """
    best: Measurement | None = None
    fewest: tuple[int, float] | None = None
    history: list[list[str]] = []
    wall = 0.0
    waited = 0.0
    for number in range(1, settings.max_attempts + 1):
        if settings.cooldown_s:
            time.sleep(settings.cooldown_s)
        wait = quiet.wait() if quiet else Wait(0.0, None, still_busy=False)
        waited += wait.waited_s
        seen = attempt(number)
        wall += seen.wall_s
        flags = _problems(seen, settings)
        history.append(flags)
        if fewest is None or (len(flags), seen.stats.spread) < fewest:
            fewest = (len(flags), seen.stats.spread)
            best = Measurement(
                stats=seen.stats,
                times_ns=seen.times_ns,
                warmup_runs=seen.warmup_runs,
                wall_s=wall,
                attempts=number,
                stable=not flags,
                flags=flags + seen.notes + wait.notes(),
                ref_ratio=max(seen.ratios, key=lambda r: abs(r - 1.0)) if seen.ratios else None,
                state_before=seen.before,
                state_after=seen.after,
                idle_load=wait.load,
                peak_rss_mb=seen.peak_rss_mb,
            )
        if not flags:
            break
    assert best is not None
    best.attempts, best.wall_s, best.attempt_flags = len(history), wall, history
    best.idle_waited_s = round(waited, 3)
    return best


@dataclass(frozen=True)
class ColdStart:
    """What a model costs once, before any warm-up: loading it, and its first inference."""

    load_ms: float
    first_run_ms: float


def load_cold(
    runtime: Runtime,
    path: Path,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    input_data: Mapping[str, np.ndarray] | None = None,
) -> ColdStart:
    """Load the model at ``path`` into ``runtime`` (on ``input_data``'s arrays where given, else random inputs)
    and run it once, timing each step: the first run also proves the model runs before any timing starts."""
    clock = time.perf_counter_ns
    t0 = clock()
    if input_data is None:  # a runtime of another package may not take input data yet
        runtime.load(path, input_shapes=input_shapes)
    else:
        runtime.load(path, input_shapes=input_shapes, input_data=input_data)
    t1 = clock()
    runtime.run()
    t2 = clock()
    return ColdStart(round((t1 - t0) / 1e6, 3), round((t2 - t1) / 1e6, 3))


def time_model(
    runtime: Runtime,
    settings: TimingSettings | None = None,
    probe: ReferenceProbe | None = None,
    quiet: QuietPolicy | None = None,
    cold: ColdStart | None = None,
) -> Measurement:
    """Time the model loaded in ``runtime`` until stable (``measure_until_stable``).

    Only the first attempt warms up for ``warmup_time_s``; later ones follow a hot model and warm up for
    ``warmup_runs`` runs only. ``cold`` (from ``load_cold``) is recorded with the result. The peak resident
    memory is read around each attempt's runs (warm-up included), outside the timed calls. With
    ``profile_runs``, the engine's profiler runs last, on runs of its own; a runtime without one is refused
    before any timing.

    The probe shares no state with ``runtime``; it is timed right before and right after each attempt.
    """
    settings = settings or TimingSettings()
    if settings.profile_runs and not runtime.can_profile():
        raise ProfilingUnsupported(f"profiling not supported by runtime {runtime.name}")
    rewarm = replace(settings, warmup_time_s=0.0)  # a re-measurement follows a hot model: runs, not seconds

    def attempt(number: int) -> Attempt:
        ratios = [probe.recent_ratio()] if probe else []
        before = machine_state()
        reset_peak()
        timing = time_runs(runtime.run, settings if number == 1 else rewarm)
        peak = peak_rss_mb()
        after = machine_state()
        if probe:
            ratios.append(probe.ratio())
        stats = LatencyStats.from_ns(timing.times_ns)
        noise = probe.noise if probe else 0.0
        return Attempt(
            stats,
            timing.times_ns,
            timing.warmup_runs,
            timing.wall_s,
            before,
            after,
            ratios,
            peak_rss_mb=peak,
            ratio_noise=noise,
        )

    m = measure_until_stable(attempt, settings, quiet)
    if cold is not None:
        m.load_ms, m.first_run_ms = cold.load_ms, cold.first_run_ms
    if settings.profile_runs:
        m.profile = runtime.profile(settings.profile_runs)
    return m
