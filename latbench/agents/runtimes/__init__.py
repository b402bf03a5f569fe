"""Runtimes, found by name through the ``latbench.runtimes`` entry-point group so third parties add their own."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module
from importlib.metadata import entry_points

from latbench.agents.runtimes.base import Runtime
from latbench.errors import LatbenchError, RuntimeUnavailable

BUILTIN = {
    "onnxruntime": "latbench.agents.runtimes.onnxruntime:OnnxRuntime",
    "tflite": "latbench.agents.runtimes.tflite:TfliteRuntime",
    "tflite-fp16": "latbench.agents.runtimes.tflite:TfliteFp16Runtime",
    "tvm": "latbench.agents.runtimes.tvm:TvmRuntime",
    "torch": "latbench.agents.runtimes.torch:TorchRuntime",
}


def _targets() -> dict[str, str]:
    found = dict(BUILTIN)
    for ep in entry_points(group="latbench.runtimes"):
        found.setdefault(ep.name, ep.value)
    return found


def available_runtimes() -> list[str]:
    return sorted(_targets())


def get_runtime(name: str) -> type[Runtime]:
    """The runtime class registered as ``name``; imports its engine only now, so agents stay light."""
    targets = _targets()
    if name not in targets:
        raise RuntimeUnavailable(f"unknown runtime {name!r}; available: {', '.join(sorted(targets))}")
    module_name, _, attr = targets[name].partition(":")
    module = import_module(module_name)
    runtime = getattr(module, attr)
    if not (isinstance(runtime, type) and issubclass(runtime, Runtime)):
        raise RuntimeUnavailable(f"entry point {name!r} ({targets[name]}) is not a latbench Runtime")
    return runtime


@dataclass(frozen=True)
class RuntimeStatus:
    """Whether this machine can run a runtime, and if not why; what ``latbench runtimes`` prints."""

    name: str
    target: str
    available: bool
    reason: str = ""
    version: str = ""
    artifact_format: str = ""
    providers: list[str] = field(default_factory=list)
    unavailable_providers: dict[str, str] = field(default_factory=dict)


def runtime_status(name: str) -> RuntimeStatus:
    """Import runtime ``name`` and ask its engine what it offers here; a missing engine is a reason, not an error."""
    target = _targets().get(name, "")
    try:
        runtime = get_runtime(name)
        return RuntimeStatus(
            name=name,
            target=target,
            available=True,
            version=runtime.version(),
            artifact_format=runtime.artifact_format,
            providers=runtime.providers(),
            unavailable_providers=runtime.unavailable_providers(),
        )
    except LatbenchError as exc:
        return RuntimeStatus(name=name, target=target, available=False, reason=str(exc))
    except ImportError as exc:
        return RuntimeStatus(name=name, target=target, available=False, reason=f"cannot import {target}: {exc}")


__all__ = ["Runtime", "RuntimeStatus", "available_runtimes", "get_runtime", "runtime_status"]
