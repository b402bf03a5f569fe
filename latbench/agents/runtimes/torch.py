"""PyTorch, eager or ``torch.compile``d, on CPU or CUDA: the network as the builders define it, no conversion.

Its artifact is a ``torch.json`` spec (``latbench.convert.torchspec``): the runtime rebuilds the network with
latbench's own builder and seeded weights and refuses it if the recorded check logits differ, so it measures
the same network as every other runtime. Providers: ``cpu``, ``cuda``, and ``-compile`` variants of each.

CUDA launches are asynchronous, so a timed run records an event after the call and waits for it before it
returns: the loop's wall clock then covers the whole inference. That is one ``DeviceSync`` over an event type;
on CPU it runs with ``HostEvent`` (nothing to wait for), so the code path CUDA uses is exercised on machines
without a GPU. torch is imported only when a torch runtime is built, never by importing this module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from latbench.agents.runtimes.base import Runtime, importable
from latbench.errors import MissingDependency, ModelInputError, RuntimeUnavailable
from latbench.profiles import OpProfile, OpTime

DEVICES = ("cpu", "cuda")
PROVIDERS = ("cpu", "cpu-compile", "cuda", "cuda-compile")


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise MissingDependency("torch", "build", "the torch runtime") from None
    return torch


def parse_provider(provider: str) -> tuple[str, bool]:
    """``"cuda-compile"`` -> ``("cuda", True)``."""
    if provider not in PROVIDERS:
        raise RuntimeUnavailable(f"unknown torch provider {provider!r}; choose one of: {', '.join(PROVIDERS)}")
    device, _, mode = provider.partition("-")
    return device, mode == "compile"


def cuda_unavailable_reason() -> str | None:
    """Why CUDA cannot be used here, or ``None`` if it can."""
    torch = _torch()
    if not torch.backends.cuda.is_built():
        return f"no CUDA device: this torch ({torch.__version__}) is a CPU-only build"
    if not torch.cuda.is_available():
        return "no CUDA device: torch has CUDA support but finds no GPU (driver, CUDA_VISIBLE_DEVICES)"
    return None


class HostEvent:
    """A device event with the interface of ``torch.cuda.Event``, for the host: its work is done when a call
    returns."""

    def record(self) -> None:
        """Nothing is queued on the host."""

    def synchronize(self) -> None:
        """Nothing to wait for."""


class DeviceSync:
    """Runs a call, then waits for the device to finish the work the call queued."""

    def __init__(self, new_event: Callable[[], Any]) -> None:
        self.done = new_event()

    def __call__(self, call: Callable[[], object]) -> None:
        call()
        self.done.record()
        self.done.synchronize()


class TorchRuntime(Runtime):
    name: ClassVar[str] = "torch"
    artifact_format: ClassVar[str] = "torch.json"

    def __init__(self, threads: int = 1, provider: str = "cpu", compile: bool | None = None) -> None:
        super().__init__(threads, provider)
        self.device, compiled = parse_provider(provider)
        self.compile = compiled if compile is None else compile
        torch = self._torch = _torch()
        if self.device == "cuda" and (reason := cuda_unavailable_reason()):
            raise RuntimeUnavailable(f"torch provider {provider!r}: {reason}")
        torch.set_num_threads(threads)
        self.sync = DeviceSync(torch.cuda.Event if self.device == "cuda" else HostEvent)
        self._forward: Callable[[Any], Any] | None = None
        self._input: Any = None

    @classmethod
    def version(cls) -> str:
        if not importable("torch"):
            raise MissingDependency("torch", "build", "the torch runtime")
        try:
            return package_version("torch")
        except PackageNotFoundError:
            raise MissingDependency("torch", "build", "the torch runtime") from None

    @classmethod
    def providers(cls) -> list[str]:
        cls.version()
        return [p for p in PROVIDERS if not p.startswith("cuda") or cuda_unavailable_reason() is None]

    @classmethod
    def unavailable_providers(cls) -> dict[str, str]:
        reason = cuda_unavailable_reason()
        return {p: reason for p in PROVIDERS if p.startswith("cuda")} if reason else {}

    def settings(self) -> dict[str, object]:
        return {**super().settings(), "compile": self.compile, "device": self.device}

    def load(
        self,
        path: Path,
        seed: int = 0,
        input_shapes: Mapping[str, Sequence[int]] | None = None,
        input_data: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Rebuild the network of the spec at ``path``; its input is static and random, so ``input_shapes`` and
        ``input_data`` must be empty."""
        from latbench.convert.torchspec import load_torch_spec

        if input_shapes or input_data:
            raise ModelInputError("the torch runtime rebuilds latbench's own networks, whose inputs are static")
        self.close()
        torch = self._torch
        model, shape = load_torch_spec(path)
        model = model.to(self.device)
        forward = torch.compile(model) if self.compile else model
        rng = np.random.default_rng(seed)
        self._input = torch.from_numpy(rng.standard_normal(shape).astype(np.float32)).to(self.device)
        self.input_shapes = {"input": tuple(shape)}
        self._forward = forward
        self._call()  # a compiled model compiles on its first call: never inside the timed loop

    def _call(self) -> None:
        if self._forward is None:
            raise RuntimeError("no model loaded: call load() first")
        with self._torch.inference_mode():
            self._forward(self._input)

    def run(self) -> None:
        self.sync(self._call)

    def profile(self, runs: int = 10, warmup: int = 3) -> OpProfile:
        """``torch.profiler`` over ``runs`` runs: each aten operator's self time (device time on CUDA)."""
        profiler = self._torch.profiler
        for _ in range(warmup):
            self.run()
        activities = [profiler.ProfilerActivity.CPU]
        if self.device == "cuda":
            activities.append(profiler.ProfilerActivity.CUDA)
        with profiler.profile(activities=activities) as prof:
            for _ in range(runs):
                self.run()
        ops = []
        for event in prof.key_averages():
            if self.device == "cuda":
                self_us = getattr(event, "self_device_time_total", getattr(event, "self_cuda_time_total", 0.0))
            else:
                self_us = event.self_cpu_time_total
            if self_us > 0:
                ops.append(OpTime(event.key, event.key, round(self_us / 1e3 / runs, 6), max(1, event.count // runs)))
        return OpProfile(self.name, self.provider, runs, ops)

    def infer(self, inputs: np.ndarray) -> np.ndarray:
        if self._forward is None:
            raise RuntimeError("no model loaded: call load() first")
        x = self._torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32)).to(self.device)
        with self._torch.inference_mode():
            return self._forward(x).float().cpu().numpy()

    def close(self) -> None:
        self._forward = None
        self._input = None
