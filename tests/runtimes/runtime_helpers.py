"""Session-wide artifacts for the runtime tests: each network is exported, converted and compiled once.

Test modules import the `built` fixture from here (a conftest.py would shadow tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from latbench.artifacts import OPSET, Artifact, ArtifactCache, ArtifactKey
from latbench.spaces import get_space

SAMPLED = {
    "nb201": get_space("nb201").sample(1, seed=11)[0],
    "fbnet": get_space("fbnet").sample(1, seed=11)[0],
}
"""One sampled architecture of each space, small enough (32x32 input) to convert and compile in seconds."""


def sampled_key(space: str) -> ArtifactKey:
    s = get_space(space)
    return ArtifactKey(space, SAMPLED[space], 1, 32, s.default_classes, OPSET, 0)


def sample_input(key: ArtifactKey) -> np.ndarray:
    return np.random.default_rng(7).standard_normal(key.input_shape).astype(np.float32)


class Built:
    """Artifacts of the sampled networks in any format, built on first use."""

    def __init__(self, root: Path) -> None:
        self.cache = ArtifactCache(root / "artifacts")
        self.tvm_cache = root / "tvm"

    def get(self, space: str, fmt: str = "onnx") -> Artifact:
        return self.cache.build(sampled_key(space), fmt)


@pytest.fixture(scope="session", name="built")
def built_fixture(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """One directory per session, whichever module asks first: each module importing the fixture gets its own
    instance, and all of them share the files."""
    return Built(tmp_path_factory.getbasetemp() / "runtimes")
