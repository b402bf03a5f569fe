"""The ONNX Runtime runtime executes real models with explicit settings."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest

from latbench.agents.runtimes import available_runtimes, get_runtime
from latbench.agents.runtimes.onnxruntime import OnnxRuntime
from latbench.errors import RuntimeUnavailable
from tests.support.models import make_conv_model


def reference_conv_relu(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))
    return np.maximum(np.einsum("nchwij,ocij->nohw", windows, w) + b[None, :, None, None], 0)


def test_inference_matches_reference_maths(tmp_path):
    w, b = make_conv_model(tmp_path / "m.onnx", channels=4, hw=8, seed=3)
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)
    with OnnxRuntime(threads=1) as rt:
        rt.load(tmp_path / "m.onnx")
        rt.run()
        np.testing.assert_allclose(rt.infer(x), reference_conv_relu(x, w, b), atol=1e-4)


def test_settings_are_recorded_and_registry_finds_it(conv_model):
    rt = get_runtime("onnxruntime")(threads=2)
    assert isinstance(rt, OnnxRuntime)
    assert rt.settings() == {"threads": 2, "provider": "cpu", "optimization": "all"}
    assert OnnxRuntime.version() == onnxruntime.__version__
    assert "onnxruntime" in available_runtimes()


def test_run_before_load_and_bad_files_are_clear_errors(tmp_path):
    rt = OnnxRuntime()
    with pytest.raises(RuntimeError, match="no model loaded"):
        rt.run()
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(RuntimeUnavailable, match="cannot load"):
        rt.load(tmp_path / "junk.onnx")


def test_unknown_runtime_and_missing_provider_say_what_exists():
    with pytest.raises(RuntimeUnavailable, match=r"available: .*onnxruntime"):
        get_runtime("coreml")
    with pytest.raises(RuntimeUnavailable, match="choose one of: cpu, cuda, tensorrt"):
        OnnxRuntime(provider="npu")
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(RuntimeUnavailable, match=r"offers: .*CPUExecutionProvider"):
            OnnxRuntime(provider="cuda")
    with pytest.raises(ValueError, match="threads"):
        OnnxRuntime(threads=0)
