"""The artifact cache converts many networks to LiteRT in one converter process, keeps what finished when one
fails, and makes a float16 model by casting the cached float32 one (the same bytes as converting in one go)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from latbench.agents.runtimes.tflite import TfliteRuntime
from latbench.artifacts import OPSET, ArtifactCache, ArtifactKey
from latbench.errors import ArtifactError
from latbench.spaces import get_space
from latbench.spaces.builders import build_model

pytestmark = pytest.mark.slow  # LiteRT conversion

GOOD = [ArtifactKey("nb201", arch, 1, 32, 10, OPSET, 0) for arch in get_space("nb201").sample(2, seed=23)]
BROKEN = ArtifactKey("nb201", get_space("nb201").sample(1, seed=24)[0], 1, 32, 10, OPSET, 2**70)
"""A key the converter fails on for real: its seed overflows torch's generator while the network is built."""


@pytest.fixture(scope="module", name="batch")
def batch_fixture(tmp_path_factory: pytest.TempPathFactory) -> tuple[ArtifactCache, list[tuple[int, int]], str]:
    """One batch of two good keys around a broken one."""
    cache = ArtifactCache(tmp_path_factory.mktemp("litert-batch"))
    calls: list[tuple[int, int]] = []
    with pytest.raises(ArtifactError) as failure:
        cache.build_many([GOOD[0], BROKEN, GOOD[1]], lambda e: calls.append((e.done, e.total)), "tflite")
    return cache, calls, str(failure.value)


def test_a_failing_key_is_named_and_the_others_are_built(batch: tuple[ArtifactCache, list, str]) -> None:
    cache, calls, error = batch
    assert error.startswith(f"cannot convert nb201 {BROKEN.arch!r} to LiteRT: ValueError: Overflow")
    assert "\n" not in error
    assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert cache.get(BROKEN, "tflite") is None
    assert sorted(p.name for p in cache.root.iterdir()) == sorted(
        f"{key.digest('tflite')}{suffix}" for key in GOOD for suffix in (".tflite", ".json")
    )
    x = np.random.default_rng(3).standard_normal(GOOD[0].input_shape).astype(np.float32)
    for key in GOOD:
        artifact = cache.get(key, "tflite")
        assert artifact is not None and artifact.path.name == f"{key.digest('tflite')}.tflite"
        with TfliteRuntime(threads=1) as rt, torch.no_grad():
            rt.load(artifact.path)
            model = build_model(key.space, key.arch, classes=key.classes, seed=key.seed)
            np.testing.assert_allclose(rt.infer(x), model(torch.from_numpy(x)).numpy(), rtol=0, atol=1e-3)
    assert cache.build_many(GOOD, fmt="tflite") == [cache.get(key, "tflite") for key in GOOD]


def test_float16_is_the_cached_float32_model_cast(
    batch: tuple[ArtifactCache, list, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = batch[0]
    fresh = ArtifactCache(tmp_path / "fresh")
    in_one_go = fresh.build(GOOD[0], "fp16.tflite")  # converted and cast by one converter
    assert fresh.get(GOOD[0], "tflite") == fresh.build(GOOD[0], "tflite")
    assert fresh.build(GOOD[0], "tflite").sha256 == cache.build(GOOD[0], "tflite").sha256

    shadow = tmp_path / "shadow"  # casting must not need litert-torch, converting does
    shadow.mkdir()
    (shadow / "litert_torch.py").write_text("raise ImportError('shadowed for this test')\n")
    monkeypatch.setenv("PYTHONPATH", str(shadow))
    results = cache.iter_build(GOOD, "fp16.tflite")
    first, _ = next(results)
    results.close()  # an interrupted batch keeps what finished
    assert cache.get(first, "fp16.tflite") is not None and len(list(cache.root.glob("*.fp16.tflite"))) == 1
    assert not list(cache.root.glob(".*"))
    cast = cache.build_many(GOOD, fmt="fp16.tflite")
    assert cast[0].sha256 == in_one_go.sha256
    assert [a.path.name for a in cast] == [f"{key.digest('fp16.tflite')}.fp16.tflite" for key in GOOD]
    assert cast[1].path.stat().st_size < 0.7 * cache.build(GOOD[1], "tflite").path.stat().st_size
    with pytest.raises(
        ArtifactError, match=re.escape(f"cannot convert nb201 {BROKEN.arch!r} to LiteRT: ") + ".* has no litert-torch"
    ):
        cache.build(BROKEN, "fp16.tflite")
