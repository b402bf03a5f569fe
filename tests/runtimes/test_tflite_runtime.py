"""LiteRT models converted from the PyTorch builders compute what PyTorch computes, and the runtime runs them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latbench.agents.runtimes import get_runtime
from latbench.agents.runtimes.tflite import TfliteFp16Runtime, TfliteRuntime
from latbench.errors import RuntimeUnavailable
from latbench.spaces.builders import build_model
from tests.runtimes.runtime_helpers import Built, built_fixture, sample_input, sampled_key  # noqa: F401  (built_fixture: the fixture)


def pytorch_logits(space: str, x: np.ndarray, fp16_weights: bool = False) -> np.ndarray:
    key = sampled_key(space)
    model = build_model(space, key.arch, classes=key.classes, seed=key.seed).eval()
    if fp16_weights:  # what a float16 model stores: conv and linear weights rounded to half precision
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d | torch.nn.Linear):
                module.weight.data = module.weight.data.half().float()
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("space", ["nb201", "fbnet"])
@pytest.mark.slow  # LiteRT conversion
def test_converted_model_matches_pytorch(built: Built, space: str) -> None:
    artifact = built.get(space, "tflite")
    x = sample_input(artifact.key)
    with TfliteRuntime(threads=1) as rt:
        rt.load(artifact.path)
        got = rt.infer(x)
    assert got.shape == artifact.output_shape
    np.testing.assert_allclose(got, pytorch_logits(space, x), rtol=0, atol=1e-3)


@pytest.mark.slow  # LiteRT conversion
def test_float16_model_matches_pytorch_with_half_precision_weights(built: Built) -> None:
    fp32, fp16 = built.get("nb201", "tflite"), built.get("nb201", "fp16.tflite")
    assert fp16.path.stat().st_size < 0.7 * fp32.path.stat().st_size
    x = sample_input(fp16.key)
    with get_runtime("tflite-fp16")(threads=1) as rt:
        rt.load(fp16.path)
        assert rt.settings()["dtype"] == "float16"
        np.testing.assert_allclose(rt.infer(x), pytorch_logits("nb201", x, fp16_weights=True), rtol=0, atol=1e-3)


@pytest.mark.slow
def test_xnnpack_and_builtin_kernels_agree_and_threads_are_recorded(built: Built) -> None:
    artifact = built.get("nb201", "tflite")
    x = sample_input(artifact.key)
    outputs = []
    for provider in ("cpu", "cpu-builtin"):
        with TfliteRuntime(threads=2, provider=provider) as rt:
            rt.load(artifact.path)
            rt.run()
            outputs.append(rt.infer(x))
            assert rt.settings() == {
                "threads": 2,
                "provider": provider,
                "xnnpack": provider == "cpu",
                "dtype": "float32",
            }
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=0, atol=1e-4)


def test_tflite_errors_are_clear(tmp_path) -> None:
    rt = TfliteRuntime()
    with pytest.raises(RuntimeError, match="no model loaded"):
        rt.run()
    (tmp_path / "junk.tflite").write_bytes(b"not a model")
    with pytest.raises(RuntimeUnavailable, match="cannot load"):
        rt.load(tmp_path / "junk.tflite")
    with pytest.raises(RuntimeUnavailable, match="choose one of: cpu, cpu-builtin"):
        TfliteRuntime(provider="gpu")
    assert TfliteFp16Runtime.artifact_format == "fp16.tflite"


@pytest.mark.slow
def test_formats_have_their_own_cache_entries(built: Built) -> None:
    onnx, tflite = built.get("nb201"), built.get("nb201", "tflite")
    assert tflite.path.suffix == ".tflite" and tflite.format == "tflite"
    assert onnx.key == tflite.key and onnx.key.digest() != onnx.key.digest("tflite")
    assert built.cache.get(tflite.key, "tflite") == tflite
    assert built.cache.find(tflite.sha256) == tflite
