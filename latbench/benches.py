"""Where ``latbench measure`` times one artifact: on this machine, or on a remote device through a ``RemoteRunner``
(``latbench.agents.remote``).

Both answer with a ``Timed``: the measurement and what a result row records of the engine that made it, and
describe the machine that measured (``info``), so the measuring loops of ``latbench.local`` exist once and a
row always speaks of the machine its latency was timed on.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from latbench.agents.environment import MachineInfo, machine_info
from latbench.agents.measure import Measurement, ReferenceProbe, TimingSettings, load_cold, time_model
from latbench.agents.quiet import QuietPolicy
from latbench.agents.runtimes import Runtime
from latbench.errors import LatbenchError, ProfilingUnsupported, RemoteError, RuntimeUnavailable, one_line
from latbench.precision import artifact_format

if TYPE_CHECKING:
    from latbench.agents.remote.runner import RemoteRunner
    from latbench.artifacts import ArtifactCache


class Engine(Protocol):
    """What a row records of the engine that timed it: a ``Runtime`` here, or a device's ``RemoteEngine``."""

    def version(self) -> str: ...

    def settings(self) -> dict[str, object]: ...


def optimization(engine: Engine) -> str:
    """The engine's graph optimisation level, as the ``cfg_optimization`` column records it."""
    return str(engine.settings().get("optimization", ""))


class CannotTime(LatbenchError):
    """The engine (here, or on the device) could not load or run a model: a model file is refused on its own."""


@dataclass(frozen=True)
class Timed:
    """One artifact's measurement; ``input_shapes`` are those the engine ran, ``numpy_version`` that of the process
    that measured (a device's own)."""

    measurement: Measurement
    engine: Engine
    input_shapes: dict[str, tuple[int, ...]]
    numpy_version: str


class Bench(abc.ABC):
    """Times artifacts of one runtime configuration; ``info`` is the machine it times them on."""

    info: MachineInfo

    @abc.abstractmethod
    def artifact_format(self, precision: str) -> str:
        """The artifact format it times at ``precision``; refused (``RuntimeUnavailable``) before anything is built."""

    def calibrate(self, cache: ArtifactCache, fmt: str) -> None:  # noqa: B027 - only a local bench has a probe
        """Before the first timing: start watching for drift, where it does."""

    @abc.abstractmethod
    def time(
        self,
        path: Path,
        input_shapes: Mapping[str, Sequence[int]] | None = None,
        input_data: Mapping[str, np.ndarray] | None = None,
    ) -> Timed:
        """Time the artifact at ``path`` (a model file's dynamic dimensions from ``input_shapes``); ``CannotTime``
        for a model the engine cannot load or run, before anything is timed."""

    def close(self) -> None:  # noqa: B027 - a remote bench holds nothing: its caller owns the runner
        """Release what the bench holds."""


class LocalBench(Bench):
    """This machine: each artifact loaded cold, then timed by latbench's loop, watched by the reference probe
    (``reference``) and waiting for idle (``quiet``)."""

    def __init__(
        self,
        runtime_cls: type[Runtime],
        threads: int,
        provider: str,
        settings: TimingSettings,
        reference: bool,
        quiet: QuietPolicy | None,
    ) -> None:
        if settings.profile_runs and not runtime_cls.can_profile():
            raise ProfilingUnsupported(f"profiling not supported by runtime {runtime_cls.name}")
        self.runtime_cls, self.threads, self.provider = runtime_cls, threads, provider
        self.settings, self.reference, self.quiet = settings, reference, quiet
        self.engine = runtime_cls(threads=threads, provider=provider)
        self.info = machine_info()
        self.probe: ReferenceProbe | None = None

    def artifact_format(self, precision: str) -> str:
        return artifact_format(self.runtime_cls, precision)

    def calibrate(self, cache: ArtifactCache, fmt: str) -> None:
        """The drift gauge: ``REFERENCE_KEY`` built as the artifact format ``fmt`` that is measured, and calibrated."""
        from latbench.artifacts import REFERENCE_KEY

        if self.reference and self.probe is None:
            ref_engine = self.runtime_cls(threads=self.threads, provider=self.provider)
            ref_engine.load(cache.build(REFERENCE_KEY, fmt).path)
            self.probe = ReferenceProbe(ref_engine)

    def time(
        self,
        path: Path,
        input_shapes: Mapping[str, Sequence[int]] | None = None,
        input_data: Mapping[str, np.ndarray] | None = None,
    ) -> Timed:
        try:
            try:
                cold = load_cold(self.engine, path, input_shapes, input_data)  # a model that cannot run fails here
            except Exception as exc:  # engines raise their own error types for models they cannot take
                raise CannotTime(one_line(exc)) from exc
            shapes = dict(self.engine.input_shapes)
            m = time_model(self.engine, self.settings, self.probe, self.quiet, cold)
        finally:
            self.engine.close()
        return Timed(m, self.engine, shapes, np.__version__)

    def close(self) -> None:
        if self.probe is not None:
            self.probe.runtime.close()


def check_remote(settings: TimingSettings, quiet: QuietPolicy | None, input_data: object | None) -> None:
    """Refuse what a remote device cannot do, before anything connects, is built or timed."""
    if settings.profile_runs:
        raise ProfilingUnsupported(
            "profiling (--profile) is not available on a remote device: its tools report no per-operator profile"
        )
    if quiet is not None:
        raise LatbenchError(
            "--wait-idle waits until this machine is idle, not the remote device: leave it out with --remote "
            "(the device's load is recorded with each result)"
        )
    if input_data is not None:
        raise LatbenchError(
            "--input-data is not taken on a remote device yet: the stub times model files on seeded random values"
        )


class RemoteBench(Bench):
    """A device reached through ``runner``: its tool times each artifact there (no reference probe runs on it);
    ``info`` is the device's. A runtime the device cannot run is refused at once; what else it cannot do, by
    ``check_remote`` before."""

    def __init__(
        self, runner: RemoteRunner, runtime_cls: type[Runtime], threads: int, provider: str, settings: TimingSettings
    ) -> None:
        self.runner, self.runtime_cls, self.threads, self.provider = runner, runtime_cls, threads, provider
        self.settings = settings
        runner.offers([runtime_cls.name])
        self.info = runner.machine_info()

    def artifact_format(self, precision: str) -> str:
        there = self.runner.artifact_format(self.runtime_cls.name)
        wanted = artifact_format(self.runtime_cls, precision)
        if there != wanted:
            raise RuntimeUnavailable(
                f"{self.runner.target} times {self.runtime_cls.name} from {there} artifacts, not {wanted}: "
                f"precision {precision} is not measured on a remote device"
            )
        return there

    def time(
        self,
        path: Path,
        input_shapes: Mapping[str, Sequence[int]] | None = None,
        input_data: Mapping[str, np.ndarray] | None = None,
    ) -> Timed:
        assert input_data is None, "refused by check_remote"
        try:
            m, engine = self.runner.measure(
                path, self.runtime_cls.name, self.threads, self.provider, self.settings, input_shapes
            )
        except RemoteError as exc:  # the device's engine or tool refused the model (a lost device raises another)
            raise CannotTime(one_line(exc)) from exc
        return Timed(m, engine, dict(engine.input_shapes), engine.numpy_version)
