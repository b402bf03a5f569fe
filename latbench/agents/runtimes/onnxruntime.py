"""ONNX Runtime: CPU, and CUDA where the installed build and the machine have it.

Inputs and outputs are bound once through IOBinding so a timed run is the engine call alone. Intra-op threads
are set explicitly, inter-op parallelism is off (sequential execution), and the graph optimisation level is
explicit, because each of these moves latency and must be the same on every device that is compared. int8 models
are QDQ ONNX files (``latbench.convert.quantize``), which the session fuses into int8 kernels at load.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from latbench.agents.modelfile import InputSpec, onnx_numpy_dtype, random_inputs, resolve_shapes
from latbench.agents.runtimes.base import Runtime
from latbench.errors import MissingDependency, RuntimeUnavailable

PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "all")


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise MissingDependency("onnxruntime", "onnx", "the onnxruntime runtime") from None
    return onnxruntime


class OnnxRuntime(Runtime):
    name = "onnxruntime"
    artifact_format = "onnx"
    precision_formats: ClassVar[Mapping[str, str]] = {"int8": "int8.onnx"}

    def __init__(self, threads: int = 1, provider: str = "cpu", optimization: str = "all") -> None:
        super().__init__(threads, provider)
        ort = _ort()
        if provider not in PROVIDERS:
            raise RuntimeUnavailable(
                f"unknown onnxruntime provider {provider!r}; choose one of: {', '.join(PROVIDERS)}"
            )
        available = ort.get_available_providers()
        if PROVIDERS[provider] not in available:
            raise RuntimeUnavailable(
                f"onnxruntime provider {provider!r} ({PROVIDERS[provider]}) is not available here; "
                f"this onnxruntime build offers: {', '.join(available)}"
            )
        if optimization not in OPTIMIZATION_LEVELS:
            raise ValueError(f"optimization must be one of {OPTIMIZATION_LEVELS}, got {optimization!r}")
        self.optimization = optimization
        self._session: Any = None
        self._binding: Any = None

    @classmethod
    def version(cls) -> str:
        return str(_ort().__version__)

    @classmethod
    def providers(cls) -> list[str]:
        available = _ort().get_available_providers()
        return [name for name, provider in PROVIDERS.items() if provider in available]

    @classmethod
    def unavailable_providers(cls) -> dict[str, str]:
        available = _ort().get_available_providers()
        return {
            name: f"this onnxruntime build has no {provider}"
            for name, provider in PROVIDERS.items()
            if provider not in available
        }

    def settings(self) -> dict[str, object]:
        return {**super().settings(), "optimization": self.optimization}

    def _options(self) -> Any:
        ort = _ort()
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[self.optimization]
        options.log_severity_level = 3
        return options

    def load(self, path: Path, seed: int = 0, input_shapes: Mapping[str, Sequence[int]] | None = None) -> None:
        ort = _ort()
        self.close()
        try:
            session = ort.InferenceSession(str(path), self._options(), providers=[PROVIDERS[self.provider]])
        except Exception as exc:  # ORT raises its own untyped errors for unreadable models
            raise RuntimeUnavailable(f"onnxruntime cannot load {path}: {exc}") from exc
        specs = [
            InputSpec(i.name, tuple(i.shape), onnx_numpy_dtype(path.name, i.name, i.type)) for i in session.get_inputs()
        ]
        shapes = resolve_shapes(path.name, specs, input_shapes)
        device = "cuda" if self.provider != "cpu" else "cpu"
        binding = session.io_binding()
        for name, x in random_inputs(specs, shapes, seed).items():
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(x, device, 0))
        for spec in session.get_outputs():
            binding.bind_output(spec.name, device)
        self._session, self._binding, self.input_shapes = session, binding, shapes

    def _require_session(self) -> Any:
        if self._session is None:
            raise RuntimeError("no model loaded: call load() first")
        return self._session

    def run(self) -> None:
        self._require_session().run_with_iobinding(self._binding)

    def infer(self, inputs: np.ndarray) -> np.ndarray:
        session = self._require_session()
        name = session.get_inputs()[0].name
        return np.asarray(session.run(None, {name: np.ascontiguousarray(inputs, dtype=np.float32)})[0])

    def close(self) -> None:
        self._session = None
        self._binding = None
