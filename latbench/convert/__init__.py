"""Build-side conversion of benchmark networks into the formats runtimes other than ONNX Runtime load.

Runs on the collector (or wherever artifacts are built), never on an agent: LiteRT models come from the PyTorch
builders through ``litert-torch`` (``latbench.convert.litert``), the torch runtime gets a rebuild spec
(``latbench.convert.torchspec``), and int8 ONNX models are quantised by ONNX Runtime
(``latbench.convert.quantize``). docs/runtimes.md says why these converters.
"""

from __future__ import annotations

from latbench.convert.litert import Conversion, convert_many, convert_tflite
from latbench.convert.quantize import quantize_onnx
from latbench.convert.torchspec import write_torch_spec

__all__ = ["Conversion", "convert_many", "convert_tflite", "quantize_onnx", "write_torch_spec"]
