"""The torch runtime's artifact: a small JSON spec from which latbench's own builder rebuilds the network.

An agent with torch needs no model file: the builders are the source of truth and weights come from a seed.
What it cannot know by itself is whether *its* torch and builder produce the same weights as the collector's,
so the spec carries a check: the logits of a seeded input computed where the spec was written. The torch
runtime rebuilds, recomputes them, and refuses the model if they differ (``verify``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from latbench.errors import ArtifactError, MissingDependency

CHECK_SEED = 1234
CHECK_ATOL = 1e-4
"""Rebuilt logits must match the recorded ones this closely: float32 noise across CPUs, far below a changed weight."""


def check_input(shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(CHECK_SEED).standard_normal(shape).astype(np.float32)


def _build(spec: dict[str, Any]) -> Any:
    try:
        from latbench.spaces.builders import build_model
    except ImportError as exc:
        raise MissingDependency("torch", "build", "the torch runtime") from exc
    return build_model(spec["space"], spec["arch"], classes=spec["classes"], seed=spec["seed"]).eval()


def _logits(model: Any, shape: tuple[int, ...]) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.from_numpy(check_input(shape))).numpy()


def write_torch_spec(key: Any, path: Path) -> None:
    """Write the spec of ``key`` (an ``ArtifactKey``) to ``path``."""
    import torch

    from latbench.artifacts import BUILDER_VERSION

    spec: dict[str, Any] = {
        "space": key.space,
        "arch": key.arch,
        "classes": key.classes,
        "seed": key.seed,
        "input_shape": list(key.input_shape),
        "builder_version": BUILDER_VERSION,
        "torch_version": torch.__version__,
    }
    spec["check_logits"] = _logits(_build(spec), key.input_shape).round(6).tolist()
    path.write_text(json.dumps(spec, sort_keys=True) + "\n")


def load_torch_spec(path: Path) -> tuple[Any, tuple[int, ...]]:
    """The network ``path`` describes, rebuilt and verified, with its input shape."""
    from latbench.artifacts import BUILDER_VERSION

    try:
        spec = json.loads(Path(path).read_text())
        shape = tuple(int(d) for d in spec["input_shape"])
        expected = np.asarray(spec["check_logits"], dtype=np.float32)
        version = spec["builder_version"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{path} is not a latbench torch spec: {exc}") from exc
    if version != BUILDER_VERSION:
        raise ArtifactError(f"{path} was written by builder version {version}; this latbench builds {BUILDER_VERSION}")
    model = _build(spec)
    got = _logits(model, shape)
    if got.shape != expected.shape or not np.allclose(got, expected, rtol=0, atol=CHECK_ATOL):
        raise ArtifactError(
            f"the rebuilt {spec['space']} network {spec['arch']!r} differs from the one the spec was written from "
            f"(torch {spec.get('torch_version')} there): its weights are not the same here"
        )
    return model, shape
