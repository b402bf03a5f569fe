"""Users' own model files: three real networks exported from PyTorch (a MobileNet-like, a ResNet-like and a small
transformer whose token sequence is a dynamic dimension), each timed by every runtime that takes its format
through the public API (``latbench.measure(models=...)``, what ``latbench measure --model`` runs).

Prints per model and runtime: the median latency, its CV, whether the stability checks passed, the input shapes
used, and the ratio to ONNX Runtime measured in the same run (the baseline). Runtimes are interleaved per model
so a drifting machine slows them alike.

    nice -n 10 python benchmarks/model_files.py
    nice -n 10 python benchmarks/model_files.py --sequence 256 --min-time 2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tests.support makes the models

import latbench
from latbench.agents.measure import TimingSettings
from latbench.convert.environment import ensure_converter
from tests.support.modelfiles import mobilenet_onnx, mobilenet_tflite, resnet_onnx, transformer_onnx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequence", type=int, default=128, help="Tokens given to the transformer's dynamic input.")
    parser.add_argument("--min-time", type=float, default=1.0, help="Seconds of timed runs per model.")
    args = parser.parse_args()
    settings = TimingSettings(min_time_s=args.min_time)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        models = {
            "mobilenet": [mobilenet_onnx(folder / "mobilenet.onnx")],
            "resnet": [resnet_onnx(folder / "resnet.onnx")],
            "transformer": [transformer_onnx(folder / "transformer.onnx")],
        }
        models["mobilenet"].append(mobilenet_tflite(folder / "mobilenet.tflite", ensure_converter()))
        inputs = [f"input_ids:1x{args.sequence}"]
        print(f"{'model':<18} {'runtime':<12} {'median ms':>10} {'cv':>6} {'stable':>6} {'vs ORT':>7}  input shapes")
        for name, files in models.items():
            baseline = None
            for runtime, path in [("onnxruntime", files[0]), ("tvm", files[0]), *[("tflite", f) for f in files[1:]]]:
                shapes = inputs if name == "transformer" else None
                row = latbench.measure(models=[path], inputs=shapes, runtime=runtime, settings=settings)[0]
                ms = float(row["latency_ms"])  # type: ignore[arg-type]
                baseline = baseline or ms
                print(
                    f"{path.name:<18} {runtime:<12} {ms:>10.3f} {float(row['cv']):>6.3f} {row['stable']!s:>6} "  # type: ignore[arg-type]
                    f"{ms / baseline:>7.2f}  {row['input_shapes']}"
                )


if __name__ == "__main__":
    main()
