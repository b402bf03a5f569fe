"""Runtimes, found by name through the ``latbench.runtimes`` entry-point group so third parties add their own."""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points

from latbench.agents.runtimes.base import Runtime
from latbench.errors import RuntimeUnavailable

BUILTIN = {"onnxruntime": "latbench.agents.runtimes.onnxruntime:OnnxRuntime"}


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


__all__ = ["Runtime", "available_runtimes", "get_runtime"]
