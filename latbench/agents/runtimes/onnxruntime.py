"""ONNX Runtime: CPU, and CUDA where the installed build and the machine have it.

Inputs and outputs are bound once through IOBinding so a timed run is the engine call alone. Intra-op threads
are set explicitly, inter-op parallelism is off (sequential execution), and the graph optimisation level is
explicit, because each of these moves latency and must be the same on every device that is compared. int8 models
are QDQ ONNX files (``latbench.convert.quantize``), which the session fuses into int8 kernels at load.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from latbench.agents.modelfile import InputSpec, model_inputs, onnx_numpy_dtype, resolve_shapes
from latbench.agents.runtimes.base import Runtime
from latbench.errors import MissingDependency, RuntimeUnavailable
from latbench.profiles import OpProfile, OpTime

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
        self._path: Path | None = None
        self._inputs: dict[str, np.ndarray] = {}

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

    def load(
        self,
        path: Path,
        seed: int = 0,
        input_shapes: Mapping[str, Sequence[int]] | None = None,
        input_data: Mapping[str, np.ndarray] | None = None,
    ) -> None:
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
        inputs = model_inputs(path.name, specs, shapes, seed, input_data)
        self._session, self._binding, self.input_shapes = session, self._bind(session, inputs), shapes
        self._path, self._inputs = path, inputs

    def _bind(self, session: Any, inputs: Mapping[str, np.ndarray]) -> Any:
        """Inputs copied to the provider's device once, outputs left on it: a run is then the engine call alone."""
        ort = _ort()
        device = "cuda" if self.provider != "cpu" else "cpu"
        binding = session.io_binding()
        for name, x in inputs.items():
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(x, device, 0))
        for spec in session.get_outputs():
            binding.bind_output(spec.name, device)
        return binding

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

    def profile(self, runs: int = 10, warmup: int = 3) -> OpProfile:
        """ORT's profiler on a second session of the same model and settings: profiling is a session option, so
        the timed session never carries it."""
        self._require_session()
        assert self._path is not None
        ort = _ort()
        with tempfile.TemporaryDirectory(prefix="latbench-ort-profile-") as tmp:
            options = self._options()
            options.enable_profiling = True
            options.profile_file_prefix = str(Path(tmp) / "ort")
            session = ort.InferenceSession(str(self._path), options, providers=[PROVIDERS[self.provider]])
            binding = self._bind(session, self._inputs)
            for _ in range(warmup + runs):
                session.run_with_iobinding(binding)
            trace = json.loads(Path(session.end_profiling()).read_text())
        return OpProfile(self.name, self.provider, runs, ort_ops(trace, runs))

    def close(self) -> None:
        self._session = None
        self._binding = None
        self._path = None
        self._inputs = {}


KERNEL_SUFFIX = "_kernel_time"


def ort_ops(trace: list[dict[str, Any]], runs: int) -> list[OpTime]:
    """Each node's mean kernel time over the last ``runs`` runs of an ORT profiler trace, in graph order."""
    windows = [(e["ts"], e["ts"] + e["dur"]) for e in trace if e.get("cat") == "Session" and e["name"] == "model_run"]
    windows = windows[-runs:]
    totals: dict[str, list[Any]] = {}
    for e in trace:
        if e.get("cat") != "Node" or not e["name"].endswith(KERNEL_SUFFIX):
            continue
        if not any(start <= e["ts"] <= end for start, end in windows):
            continue
        node = e["name"][: -len(KERNEL_SUFFIX)]
        entry = totals.setdefault(node, [e.get("args", {}).get("op_name", node), 0.0, 0])
        entry[1] += e["dur"]
        entry[2] += 1
    n = max(len(windows), 1)
    return [
        OpTime(node, str(op), round(us / 1e3 / n, 6), max(1, round(calls / n)))
        for node, (op, us, calls) in totals.items()
    ]
