"""Users' model files for tests: small real networks exported from PyTorch the way a user would export theirs,
and broken files of every kind latbench must refuse. A plain module, importable by the LiteRT converter's own
interpreter (which has torch but not pytest)."""

from __future__ import annotations

import subprocess
import warnings
from pathlib import Path

import torch
from torch import nn

MOBILENET_SHAPE = (1, 3, 32, 32)
RESNET_SHAPE = (1, 3, 32, 32)
VOCAB = 50


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    """A depthwise separable convolution: depthwise 3x3, then pointwise 1x1, each with BN and ReLU6."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False),
        nn.BatchNorm2d(cin),
        nn.ReLU6(),
        nn.Conv2d(cin, cout, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(),
    )


class MobileNetLike(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6())
        self.blocks = nn.Sequential(_block(8, 16, 1), _block(16, 32, 2), _block(32, 32, 1))
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(y + self.down(x))


class ResNetLike(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.layers = nn.Sequential(BasicBlock(8, 8, 1), BasicBlock(8, 16, 2))
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.layers(self.stem(x)).mean(dim=(2, 3)))


class TinyTransformer(nn.Module):
    """Token ids (int64, batch x sequence) -> embedding -> one encoder layer (self-attention, feed-forward)."""

    def __init__(self, d: int = 32) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, d)
        self.q, self.k, self.v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.proj = nn.Linear(d, d)
        self.norm1 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
        self.norm2 = nn.LayerNorm(d)
        self.scale = d**-0.5

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids)
        attention = torch.softmax(self.q(x) @ self.k(x).transpose(1, 2) * self.scale, dim=-1)
        x = self.norm1(x + self.proj(attention @ self.v(x)))
        return self.norm2(x + self.ff(x))


def _export(model: nn.Module, example: torch.Tensor, path: Path, name: str, dynamic: dict | None = None) -> Path:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(),
            (example,),
            str(path),
            input_names=[name],
            output_names=["output"],
            dynamic_axes=dynamic,
            opset_version=17,
            dynamo=False,
        )
    return path


def mobilenet_onnx(path: Path) -> Path:
    torch.manual_seed(0)
    return _export(MobileNetLike(), torch.zeros(MOBILENET_SHAPE), path, "image")


def resnet_onnx(path: Path) -> Path:
    torch.manual_seed(0)
    return _export(ResNetLike(), torch.zeros(RESNET_SHAPE), path, "pixels")


def transformer_onnx(path: Path) -> Path:
    """Input ``input_ids``: int64, shape 1 x ``sequence`` (dynamic)."""
    torch.manual_seed(0)
    ids = torch.zeros((1, 16), dtype=torch.int64)
    return _export(TinyTransformer(), ids, path, "input_ids", {"input_ids": {1: "sequence"}})


def mobilenet_tflite(path: Path, python: str) -> Path:
    """The MobileNet-like network converted with ``litert-torch`` in the interpreter ``python`` (the converter's
    own environment), as a user converts theirs."""
    script = (
        "import sys, torch, litert_torch, modelfiles\n"
        "torch.manual_seed(0)\n"
        "m = modelfiles.MobileNetLike().eval()\n"
        "litert_torch.convert(m, (torch.zeros(modelfiles.MOBILENET_SHAPE),)).export(sys.argv[1])\n"
    )
    env = {"PYTHONPATH": str(Path(__file__).parent), "PATH": str(Path(python).parent)}
    done = subprocess.run([python, "-c", script, str(path)], capture_output=True, text=True, env=env, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"litert-torch conversion failed: {done.stderr.strip().splitlines()[-1:]}")
    return path


def unsupported_op_onnx(path: Path) -> Path:
    """A valid ONNX graph whose one node is an op of a made-up domain no runtime implements."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example.made_up")],
        "unsupported",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example.made_up", 1)]
    )
    onnx.save(model, str(path))
    return path


def outside_data_onnx(path: Path) -> Path:
    """An ONNX file whose weight is external data at ``../<name>.bin``: outside the model's folder (the data file
    exists, so only the location is wrong)."""
    return external_data_onnx(path, f"../{path.stem}.bin")


def external_data_onnx(path: Path, location: str) -> Path:
    """An ONNX file whose weight is external data in ``location``, relative to its folder (written there), as
    `onnx.save` with ``save_as_external_data=True`` leaves a large model."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((4, 4), dtype=np.float32), "w")
    (path.parent / location).write_bytes(weight.raw_data)
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(16 * 4))):
        weight.external_data.add(key=key, value=value)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "external",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        initializer=[weight],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def dense_onnx(path: Path, features: int) -> Path:
    """An ONNX file of one MatMul whose ``features`` x ``features`` float32 weight is inside it: a model file of
    about ``4 * features**2`` bytes, as large as a test needs."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((features, features), dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "dense",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, features])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, features])],
        initializer=[weight],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path
