"""Static int8 quantisation of an ONNX artifact: ONNX Runtime's quantiser in QDQ form, calibrated on generated inputs.

The quantised model keeps the float32 network's graph with QuantizeLinear/DequantizeLinear pairs around each
quantised tensor (QDQ), which ONNX Runtime fuses into int8 kernels when it loads the model. Activations are
uint8 and weights int8 per output channel, ONNX Runtime's recommendation for x86-64 CPUs (U8S8). Calibration
ranges come from ``CALIBRATION_SAMPLES`` standard-normal inputs (the distribution of normalised images, to first
order) drawn from the key's seed: nothing is downloaded, and MinMax calibration over the same inputs writes the
same bytes every time (checked on onnxruntime 1.32).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from latbench.errors import ArtifactError, MissingDependency

CALIBRATION_SAMPLES = 8
"""Generated inputs that set the activation ranges; 8 took 0.5 s on an NB201 network, 2-core machine."""


def _quiet_quantiser(record: logging.LogRecord) -> bool:
    """Drop the quantiser's advice (pre-processing, per-channel axes), which it logs on the root logger."""
    return "quantization" not in Path(record.pathname).parts or record.levelno >= logging.ERROR


def calibration_inputs(input_name: str, shape: tuple[int, ...], seed: int) -> Iterator[dict[str, np.ndarray]]:
    """The calibration feed: ``CALIBRATION_SAMPLES`` standard-normal float32 inputs drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    for _ in range(CALIBRATION_SAMPLES):
        yield {input_name: rng.standard_normal(shape, dtype=np.float32)}


def quantize_onnx(source: Path, target: Path, input_name: str, shape: tuple[int, ...], seed: int) -> None:
    """Write ``source`` (a float32 ONNX model with one input ``input_name`` of ``shape``) to ``target`` as a
    statically quantised int8 QDQ model."""
    try:
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    except ImportError as exc:
        raise MissingDependency("onnxruntime", "onnx", "int8 quantisation") from exc

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feed = calibration_inputs(input_name, shape, seed)

        def get_next(self) -> dict[str, Any] | None:
            return next(self.feed, None)

    root = logging.getLogger()
    root.addFilter(_quiet_quantiser)
    try:
        quantize_static(
            str(source),
            str(target),
            Reader(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
        )
    except Exception as exc:  # the quantiser raises its own untyped errors
        raise ArtifactError(f"cannot quantise {source.name} to int8: {type(exc).__name__}: {exc}") from exc
    finally:
        root.removeFilter(_quiet_quantiser)
