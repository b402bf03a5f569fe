"""An ONNX model whose cost depends on its input values: ``If(sum(x) > 0)`` runs two 256x256 matrix products,
else returns ``x``. Built with ``onnx.helper``, as no exporter writes data-dependent branches from a plain module."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SHAPE = (64, 256)


def control_flow_onnx(path: Path) -> Path:
    from onnx import TensorProto, helper, numpy_helper, save

    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((256, 256)).astype(np.float32), "w")
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, list(SHAPE))
    heavy = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("MatMul", ["h", "w"], ["y_then"])],
        "heavy",
        [],
        [helper.make_tensor_value_info("y_then", TensorProto.FLOAT, list(SHAPE))],
    )
    light = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y_else"])],
        "light",
        [],
        [helper.make_tensor_value_info("y_else", TensorProto.FLOAT, list(SHAPE))],
    )
    zero = numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero")
    graph = helper.make_graph(
        [
            helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
            helper.make_node("Greater", ["s", "zero"], ["c"]),
            helper.make_node("If", ["c"], ["y"], then_branch=heavy, else_branch=light),
        ],
        "branchy",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(SHAPE))],
        [out],
        initializer=[weight, zero],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save(model, str(path))
    return path
