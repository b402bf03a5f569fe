"""Small real models and fast settings shared by tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def make_conv_model(path: Path, channels: int = 8, hw: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Write Conv(3->channels, 3x3, pad 1) + ReLU as ONNX; return its weight and bias for reference maths."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = rng.standard_normal((channels, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(channels).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["input", "w", "b"], ["conv"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["conv"], ["logits"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, hw, hw])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, channels, hw, hw])],
        initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return w, b


FAST_CLI = ["--min-runs", "10", "--min-time", "0.05", "--warmup-runs", "2", "--warmup-time", "0.02"]
"""Measurement flags that keep CLI tests short; the loop's own tests cover the defaults."""
