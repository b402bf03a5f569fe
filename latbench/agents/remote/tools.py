"""Benchmark tools a device runs: "convert, profile, parse" with the converting done by the collector.

- ``stub``: ``python -m latbench.agents.remote serve`` on the device, latbench's own loop and record (any
  runtime the device's Python has; the agent code travels as a zip; one process per session).
- ``benchmark_model``: TFLite's benchmark binary, for ``tflite`` jobs.
- ``onnxruntime_perf_test``: ONNX Runtime's benchmark binary, for ``onnxruntime`` jobs.

Each turns one uploaded artifact into a ``Measurement``, the record a local measurement produces. The binaries
time their own loop, so latbench reads the machine state around each run and re-runs a flagged one, as the
local loop does.
"""

from __future__ import annotations

import abc
import atexit
import json
import math
import shutil
import tempfile
import time
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

import latbench
from latbench.agents.environment import MachineInfo, MachineState
from latbench.agents.measure import Attempt, Measurement, TimingSettings, measure_until_stable
from latbench.agents.remote.device import RemoteDevice, quote
from latbench.agents.remote.parse import (
    SUMMARY_FLAG,
    parse_benchmark_model,
    parse_perf_test_summary,
    parse_perf_test_times,
    parse_stub,
)
from latbench.agents.remote.session import Session, SessionEnded
from latbench.agents.remote.shell import remote_machine_info, remote_machine_state
from latbench.agents.runtimes import get_runtime
from latbench.agents.stats import LatencyStats
from latbench.errors import RemoteError
from latbench.protocol import RuntimeOffer


@dataclass(frozen=True)
class RemoteEngine:
    """What a result records of the engine that measured on the device (``version()``, ``settings()`` and the
    model's ``input_shapes``, as a local ``Runtime`` offers them; the binaries report no shapes)."""

    runtime_version: str
    engine_settings: dict[str, object]
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    numpy_version: str = ""
    """The device's numpy, which the stub measured with; "" for the binaries, which use none."""

    def version(self) -> str:
        return self.runtime_version

    def settings(self) -> dict[str, object]:
        return self.engine_settings


class Tool(abc.ABC):
    """One way of timing an artifact on a device. ``command`` is the tool's path there (or the Python for the
    stub); ``cpu_mask`` pins it to CPUs with ``taskset`` (hex, e.g. ``f0`` for the big cores of a 4+4 phone)."""

    name: ClassVar[str]
    default_command: ClassVar[str]

    def __init__(self, command: str | None = None, cpu_mask: str | None = None) -> None:
        self.command = command or self.default_command
        self.cpu_mask = cpu_mask

    def _prefix(self) -> str:
        return f"taskset {quote(self.cpu_mask)} " if self.cpu_mask else ""

    def prepare(self, device: RemoteDevice) -> None:  # noqa: B027 - most tools need no preparation
        """Once per device session, before the first measurement."""

    def close(self) -> None:  # noqa: B027 - most tools hold nothing
        """At the end of the device session."""

    @abc.abstractmethod
    def artifact_format(self, runtime: str) -> str:
        """The artifact format this tool measures ``runtime`` jobs from; ``RemoteError`` if it cannot."""

    @abc.abstractmethod
    def offers(self, device: RemoteDevice, runtimes: list[str]) -> list[RuntimeOffer]:
        """What the device offers of ``runtimes`` through this tool."""

    def machine_info(self, device: RemoteDevice) -> MachineInfo:
        return remote_machine_info(device)

    @abc.abstractmethod
    def measure(
        self,
        device: RemoteDevice,
        artifact: str,
        runtime: str,
        threads: int,
        provider: str,
        settings: TimingSettings,
        input_shapes: Mapping[str, Sequence[int]] | None = None,
    ) -> tuple[Measurement, RemoteEngine]:
        """Measure the artifact already uploaded to ``artifact``, its dynamic input dimensions filled from
        ``input_shapes`` (a model file's, as ``Runtime.load`` takes them)."""


# --- the stub ----------------------------------------------------------------------------------------------------

_ZIP: Path | None = None


def agent_zip() -> Path:
    """latbench's agent code (``latbench/__init__``, the standard-library modules it imports: ``errors``,
    ``hashing``, ``profiles``; ``agents/``) as an importable zip, built once."""
    global _ZIP
    if _ZIP is None or not _ZIP.exists():
        root = Path(latbench.__file__).parent
        folder = tempfile.mkdtemp(prefix="latbench-stub-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        path = Path(folder) / f"latbench-agent-{latbench.__version__}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            standalone = [root / f"{name}.py" for name in ("__init__", "errors", "hashing", "profiles")]
            for file in [*standalone, *sorted((root / "agents").rglob("*.py"))]:
                z.write(file, Path("latbench") / file.relative_to(root))
        _ZIP = path
    return _ZIP


def _state(data: dict[str, Any] | None) -> MachineState | None:
    return MachineState(**data) if data else None


ANSWER_SLACK_S = 120.0
"""What the stub's timing may take beyond its settings' bound (a slow device's machine-state readings, a busy
one's scheduling) before the runner gives up on it."""
LOAD_TIMEOUT_S = 600.0
"""How long the stub may take to load a model before it starts timing it (a large model from a board's SD card
takes minutes); the timing is then bounded by its settings (``StubTool.measure``)."""


class StubTool(Tool):
    name = "stub"
    default_command = "python3"

    def prepare(self, device: RemoteDevice) -> None:
        """Upload the agent zip into the work dir; again after a reconnect, into the new one."""
        self._zip = device.path(agent_zip().name)
        self._info_cache: dict[str, Any] | None = None
        self._session: Session | None = None
        self._closed = False
        device.put(agent_zip(), self._zip)

    def _run(
        self, device: RemoteDevice, request: dict[str, Any], timeout_s: float, first_timeout_s: float | None = None
    ) -> dict[str, Any]:
        """One request to the device's ``serve`` process, started on first use. If it ends without answering, it
        is started again and the request sent once more: it may have died between requests (killed, out of
        memory), which says nothing of this one. If it ends again, the request fails: a model that crashes the
        device's Python fails its job instead of restarting the stub for ever."""
        for retry in (False, True):
            if self._closed:
                raise RemoteError(f"{device.target}: the stub session is closed")
            if self._session is None or not self._session.alive:
                stub = quote(self.command, "-m", "latbench.agents.remote", "serve")
                self._session = device.spawn(f"PYTHONPATH={quote(self._zip)} {self._prefix()}{stub}")
            try:
                return parse_stub(self._session.request(json.dumps(request), timeout_s, first_timeout_s), self.command)
            except SessionEnded:
                if retry:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._closed = True
        if self._session is not None:
            self._session.close()

    def artifact_format(self, runtime: str) -> str:
        return get_runtime(runtime).artifact_format

    def _info(self, device: RemoteDevice) -> dict[str, Any]:
        """The device's hardware and runtimes, asked once per session."""
        if self._info_cache is None:
            self._info_cache = self._run(device, {"command": "info"}, timeout_s=120)
        return self._info_cache

    def offers(self, device: RemoteDevice, runtimes: list[str]) -> list[RuntimeOffer]:
        there: dict[str, dict[str, Any]] = self._info(device)["runtimes"]
        missing = [r for r in runtimes if r not in there]
        if missing:
            raise RemoteError(
                f"{device.target} cannot run {', '.join(missing)} with {self.command} "
                f"(it has: {', '.join(there) or 'none'}); install the engine there"
            )
        return [
            RuntimeOffer(name=r, version=str(there[r]["version"])[:64], providers=list(there[r]["providers"]))
            for r in runtimes
        ]

    def machine_info(self, device: RemoteDevice) -> MachineInfo:
        return MachineInfo(**self._info(device)["machine"])

    def measure(
        self,
        device: RemoteDevice,
        artifact: str,
        runtime: str,
        threads: int,
        provider: str,
        settings: TimingSettings,
        input_shapes: Mapping[str, Sequence[int]] | None = None,
    ) -> tuple[Measurement, RemoteEngine]:
        budget = settings.max_attempts * (settings.max_time_s + settings.warmup_time_s + settings.cooldown_s)
        budget += ANSWER_SLACK_S
        request = {"command": "measure", "artifact": artifact, "runtime": runtime, "threads": threads,
                   "provider": provider, "settings": json.dumps(asdict(settings))}  # fmt: skip
        if input_shapes:
            request["input_shapes"] = {name: list(shape) for name, shape in input_shapes.items()}
        r = self._run(device, request, timeout_s=budget, first_timeout_s=LOAD_TIMEOUT_S)
        times = np.asarray(r["times_ns"], dtype=np.int64)
        measurement = Measurement(
            stats=LatencyStats.from_ns(times),
            times_ns=times,
            warmup_runs=int(r["warmup_runs"]),
            wall_s=float(r["wall_s"]),
            attempts=int(r["attempts"]),
            stable=bool(r["stable"]),
            flags=list(r["flags"]),
            attempt_flags=[list(f) for f in r["attempt_flags"]],
            state_before=_state(r["state_before"]),
            state_after=_state(r["state_after"]),
        )
        shapes = {str(name): tuple(int(d) for d in dims) for name, dims in dict(r.get("input_shapes") or {}).items()}
        return measurement, RemoteEngine(
            str(r["runtime_version"]), dict(r["settings"]), shapes, str(r.get("numpy_version", ""))[:64]
        )


# --- benchmark binaries -----------------------------------------------------------------------------------------


class BinaryTool(Tool):
    """A device binary that times its own loop; latbench brackets each run with machine-state readings."""

    runtime: ClassVar[str]
    format: ClassVar[str]

    def artifact_format(self, runtime: str) -> str:
        if runtime != self.runtime:
            raise RemoteError(f"{self.name} measures {self.runtime} jobs, not {runtime}")
        return self.format

    def offers(self, device: RemoteDevice, runtimes: list[str]) -> list[RuntimeOffer]:
        for r in runtimes:
            self.artifact_format(r)
        found = device.exec(f"command -v {quote(self.command)} || test -x {quote(self.command)}")
        found.check(f"finding {self.command}")
        return [RuntimeOffer(name=self.runtime, version=self.name, providers=["cpu"])]

    @abc.abstractmethod
    def _command(self, artifact: str, out: str, threads: int, provider: str, settings: TimingSettings) -> str:
        """The tool's command line for one timed loop; ``out`` is a scratch file it may write."""

    @abc.abstractmethod
    def _parse(self, device: RemoteDevice, output: str, out: str) -> tuple[LatencyStats, np.ndarray, int, list[str]]:
        """Statistics, per-run times (empty if the tool gives none), warm-up runs, and informational flags."""

    def measure(
        self,
        device: RemoteDevice,
        artifact: str,
        runtime: str,
        threads: int,
        provider: str,
        settings: TimingSettings,
        input_shapes: Mapping[str, Sequence[int]] | None = None,
    ) -> tuple[Measurement, RemoteEngine]:
        self.artifact_format(runtime)
        if input_shapes:
            raise RemoteError(
                f"{self.name} times model files with static input shapes only; the stub tool (`--remote-tool stub`) "
                "fills dynamic dimensions as a local agent does"
            )
        out = artifact + ".out"
        budget = settings.max_time_s * 2 + settings.warmup_time_s + 120

        def attempt(number: int) -> Attempt:
            before = remote_machine_state(device)
            command = self._prefix() + self._command(artifact, out, threads, provider, settings)
            started = time.perf_counter()
            try:
                done = device.exec(command, budget)
                done.check(self.name)
                stats, times, warmup, notes = self._parse(device, done.output, out)
            finally:
                device.remove(out)
            after = remote_machine_state(device)
            return Attempt(stats, times, warmup, time.perf_counter() - started, before, after, notes=notes)

        best = measure_until_stable(attempt, settings)
        return best, RemoteEngine(self.name, {"threads": threads, "provider": provider, "tool": self.name})


class BenchmarkModelTool(BinaryTool):
    """TFLite's ``benchmark_model`` (summary statistics only, see ``parse``)."""

    name = "benchmark_model"
    default_command = "benchmark_model"
    runtime = "tflite"
    format = "tflite"

    def _command(self, artifact: str, out: str, threads: int, provider: str, settings: TimingSettings) -> str:
        delegate = {"cpu": [], "gpu": ["--use_gpu=true"], "nnapi": ["--use_nnapi=true"]}
        if provider not in delegate:
            raise RemoteError(f"benchmark_model provider must be one of {', '.join(delegate)}, got {provider!r}")
        return quote(
            self.command,
            f"--graph={artifact}",
            f"--num_threads={threads}",
            f"--num_runs={settings.min_runs}",
            f"--min_secs={settings.min_time_s}",
            f"--max_secs={settings.max_time_s}",
            f"--warmup_runs={settings.warmup_runs}",
            f"--warmup_min_secs={settings.warmup_time_s}",
            *delegate[provider],
        )

    def _parse(self, device: RemoteDevice, output: str, out: str) -> tuple[LatencyStats, np.ndarray, int, list[str]]:
        report = parse_benchmark_model(output)
        warmup = report.warmup.count if report.warmup else 0
        return report.timed.latency_stats(), np.zeros(0, dtype=np.int64), warmup, [SUMMARY_FLAG]


class PerfTestTool(BinaryTool):
    """ONNX Runtime's ``onnxruntime_perf_test``: per-run times from its result file; one warm-up run (its own)."""

    name = "onnxruntime_perf_test"
    default_command = "onnxruntime_perf_test"
    runtime = "onnxruntime"
    format = "onnx"

    def _command(self, artifact: str, out: str, threads: int, provider: str, settings: TimingSettings) -> str:
        seconds = str(max(1, math.ceil(settings.min_time_s)))
        return quote(
            self.command, "-I", "-s", "-m", "duration", "-t", seconds, "-e", provider,
            "-x", str(threads), "-y", "1", "-o", "99", artifact, out,
        )  # fmt: skip

    def _parse(self, device: RemoteDevice, output: str, out: str) -> tuple[LatencyStats, np.ndarray, int, list[str]]:
        summary = parse_perf_test_summary(output)
        times = parse_perf_test_times(device.read(out))
        if len(times) != summary.count:
            raise RemoteError(f"onnxruntime_perf_test reported {summary.count} runs but wrote {len(times)}")
        return LatencyStats.from_ns(times), times, 1, []


TOOLS: dict[str, type[Tool]] = {t.name: t for t in (StubTool, BenchmarkModelTool, PerfTestTool)}
