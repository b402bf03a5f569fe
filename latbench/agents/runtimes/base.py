"""The one interface every runtime implements: load an artifact, run one inference, close."""

from __future__ import annotations

import abc
import importlib.util
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from latbench.errors import ProfilingUnsupported

if TYPE_CHECKING:
    from latbench.profiles import OpProfile


def importable(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (for engines that take seconds to import)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


class Runtime(abc.ABC):
    """A model loaded into an inference engine, with its inputs allocated once.

    ``run`` is what the measurement loop times: one inference on the pre-allocated inputs, nothing else (no
    allocation, no copy back that the engine would not do anyway). Threads and the engine's device are fixed
    at construction, so a result records exactly what it was measured with.
    """

    name: ClassVar[str]
    artifact_format: ClassVar[str]
    precision_formats: ClassVar[Mapping[str, str]] = {}
    """The artifact format of each precision besides fp32 that the runtime runs (``latbench.precision``)."""

    def __init__(self, threads: int = 1, provider: str = "cpu") -> None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self.threads = threads
        self.provider = provider
        self.input_shapes: dict[str, tuple[int, ...]] = {}
        """The shape of each input of the loaded model, in the model's input order."""

    @classmethod
    @abc.abstractmethod
    def version(cls) -> str:
        """The engine's version, recorded with every result."""

    @classmethod
    def providers(cls) -> list[str]:
        """The providers (engine devices) this machine can run the engine on; what an agent offers a collector."""
        return ["cpu"]

    @classmethod
    def unavailable_providers(cls) -> dict[str, str]:
        """Providers this runtime knows but this machine cannot run, each with why (e.g. no GPU)."""
        return {}

    @abc.abstractmethod
    def load(
        self,
        path: Path,
        seed: int = 0,
        input_shapes: Mapping[str, Sequence[int]] | None = None,
        input_data: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Load the model at ``path`` and allocate its inputs: random values of each input's dtype from ``seed``
        (``latbench.agents.modelfile.random_inputs``), shaped as the model says, with ``input_shapes`` filling
        its dynamic dimensions (``ModelInputError`` if one is left open); or ``input_data``'s arrays by input name
        (``modelfile.model_inputs``), for a model file whose latency depends on its input values."""

    @abc.abstractmethod
    def run(self) -> None:
        """One inference on the pre-allocated inputs; blocks until the result is ready."""

    @abc.abstractmethod
    def infer(self, inputs: np.ndarray) -> np.ndarray:
        """One inference on ``inputs`` returning the output; for correctness checks, never timed."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the model; the runtime may load another one afterwards."""

    @classmethod
    def can_profile(cls) -> bool:
        """Whether ``profile`` is implemented: checked before timing, so a refused profile costs no measurement."""
        return cls.profile is not Runtime.profile

    def profile(self, runs: int = 10, warmup: int = 3) -> OpProfile:
        """Each operator's mean time over ``runs`` runs after ``warmup`` more, from the engine's own profiler, on
        runs of their own (never the timed ones: a profiler slows what it records)."""
        raise ProfilingUnsupported(f"profiling not supported by runtime {self.name}")

    def settings(self) -> dict[str, object]:
        """Engine settings worth recording beside a result."""
        return {"threads": self.threads, "provider": self.provider}

    def __enter__(self) -> Runtime:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
