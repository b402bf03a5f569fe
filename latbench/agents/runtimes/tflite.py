"""LiteRT (TensorFlow Lite) through ``ai-edge-litert``: the engine of phones and edge boards, without TensorFlow.

The interpreter applies XNNPACK as its default delegate; provider ``cpu`` keeps it, ``cpu-builtin`` runs the
builtin kernels only (what a device without XNNPACK would do). ``tflite`` loads float32 models and
``tflite-fp16`` models whose weights are stored as float16 (computed in float32 or float16 as the kernels
choose): the same network, a different artifact, so each is its own runtime name and the collector can tell
from the name which file to build. ``tflite`` also loads int8 models (``--precision int8``; int8 inputs too).
Inputs are copied in once at load; a timed run is ``invoke`` alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from latbench.agents.modelfile import InputSpec, model_inputs, resolve_shapes
from latbench.agents.runtimes.base import Runtime
from latbench.errors import MissingDependency, RuntimeUnavailable

PROVIDERS = {"cpu": True, "cpu-builtin": False}
"""Provider -> whether the XNNPACK delegate is applied."""


def _interpreter_module() -> Any:
    try:
        from ai_edge_litert import interpreter
    except ImportError:
        raise MissingDependency("ai-edge-litert", "tflite", "the tflite runtime") from None
    return interpreter


def _as_model_layout(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``x`` (NCHW, latbench's layout) in the layout the model takes: as is, or NHWC for TF-style models."""
    if tuple(x.shape) == shape:
        return x
    if x.ndim == 4 and tuple(np.transpose(x, (0, 2, 3, 1)).shape) == shape:
        return np.transpose(x, (0, 2, 3, 1))
    raise ValueError(f"input of shape {tuple(x.shape)} does not fit the model's input {shape}")


class TfliteRuntime(Runtime):
    name: ClassVar[str] = "tflite"
    artifact_format: ClassVar[str] = "tflite"
    dtype: ClassVar[str] = "float32"
    precision_formats: ClassVar[Mapping[str, str]] = {"int8": "int8.tflite"}

    def __init__(self, threads: int = 1, provider: str = "cpu", xnnpack: bool | None = None) -> None:
        super().__init__(threads, provider)
        self._module = _interpreter_module()
        if provider not in PROVIDERS:
            raise RuntimeUnavailable(
                f"unknown {self.name} provider {provider!r}; choose one of: {', '.join(PROVIDERS)}"
            )
        self.xnnpack = PROVIDERS[provider] if xnnpack is None else xnnpack
        self._interpreter: Any = None

    @classmethod
    def version(cls) -> str:
        try:
            return package_version("ai-edge-litert")
        except PackageNotFoundError:
            raise MissingDependency("ai-edge-litert", "tflite", "the tflite runtime") from None

    @classmethod
    def providers(cls) -> list[str]:
        _interpreter_module()
        return list(PROVIDERS)

    def settings(self) -> dict[str, object]:
        return {**super().settings(), "xnnpack": self.xnnpack, "dtype": self.dtype}

    def load(
        self,
        path: Path,
        seed: int = 0,
        input_shapes: Mapping[str, Sequence[int]] | None = None,
        input_data: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        self.close()
        resolver = self._module.OpResolverType
        try:
            interpreter = self._module.Interpreter(
                model_path=str(path),
                num_threads=self.threads,
                experimental_op_resolver_type=resolver.AUTO
                if self.xnnpack
                else resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            )
            details = interpreter.get_input_details()
            specs = [
                InputSpec(d["name"], tuple(int(n) for n in d["shape_signature"]), np.dtype(d["dtype"])) for d in details
            ]
            shapes = resolve_shapes(path.name, specs, input_shapes)
            for d, spec in zip(details, specs, strict=True):
                if shapes[spec.name] != tuple(int(n) for n in d["shape"]):
                    interpreter.resize_tensor_input(d["index"], list(shapes[spec.name]), strict=True)
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise RuntimeUnavailable(f"{self.name} cannot load {path}: {exc}") from exc
        for d, x in zip(details, model_inputs(path.name, specs, shapes, seed, input_data).values(), strict=True):
            interpreter.set_tensor(d["index"], x)
        self._interpreter, self.input_shapes = interpreter, shapes

    def _require(self) -> Any:
        if self._interpreter is None:
            raise RuntimeError("no model loaded: call load() first")
        return self._interpreter

    def run(self) -> None:
        self._require().invoke()

    def infer(self, inputs: np.ndarray) -> np.ndarray:
        interpreter = self._require()
        spec = interpreter.get_input_details()[0]
        x = _as_model_layout(np.asarray(inputs, dtype=spec["dtype"]), tuple(spec["shape"]))
        interpreter.set_tensor(spec["index"], np.ascontiguousarray(x))
        interpreter.invoke()
        return np.array(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))

    def close(self) -> None:
        self._interpreter = None


class TfliteFp16Runtime(TfliteRuntime):
    """The same engine on the float16-weight model of each network."""

    name: ClassVar[str] = "tflite-fp16"
    artifact_format: ClassVar[str] = "fp16.tflite"
    dtype: ClassVar[str] = "float16"
    precision_formats: ClassVar[Mapping[str, str]] = {}
