"""PyTorch -> LiteRT with ``litert-torch``, in a separate Python process.

``litert-torch`` pins ``xdsl``, which pins ``typing-extensions<4.13`` and so downgrades pydantic below what the
collector runs on: it lives in its own environment (``scripts/convert-env.sh`` makes one), found as
``$LATBENCH_CONVERT_PYTHON``, else ``$LATBENCH_HOME/convert-venv`` (``~/.local/share/latbench/convert-venv``)
when it exists, else this interpreter. A conversion also takes tens of seconds and gigabytes
of JAX/MLIR machinery; a child process returns that memory and turns a converter crash into an error.

float16 models are the float32 model with weights cast to float16 and a Dequantize op in front of each
Conv/FullyConnected (``ai-edge-quantizer``'s weight-only FLOAT_CASTING), as TensorFlow's float16 conversion does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import latbench
from latbench.errors import ArtifactError

PYTHON_ENV = "LATBENCH_CONVERT_PYTHON"
DTYPES = ("float32", "float16")
TIMEOUT_S = 1800.0


def convert_python() -> str:
    """The interpreter that has ``litert-torch``."""
    if os.environ.get(PYTHON_ENV):
        return os.environ[PYTHON_ENV]
    home = Path(os.environ.get("LATBENCH_HOME") or Path.home() / ".local" / "share" / "latbench")
    venv = home / "convert-venv" / "bin" / "python"
    return str(venv) if venv.is_file() else sys.executable


def _child_env() -> dict[str, str]:
    """The environment of the converter: this latbench importable, and the interpreter's ``bin`` on PATH."""
    root = str(Path(latbench.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env["PATH"] = os.pathsep.join((str(Path(convert_python()).parent), env.get("PATH", "")))
    return env


def convert_tflite(key: object, path: Path, dtype: str = "float32") -> None:
    """Write ``key``'s network (an ``ArtifactKey``) to ``path`` as a LiteRT model with ``dtype`` weights."""
    from dataclasses import asdict

    if dtype not in DTYPES:
        raise ArtifactError(f"LiteRT models are {' or '.join(DTYPES)}, not {dtype!r}")
    request = json.dumps({"key": asdict(key), "path": str(path), "dtype": dtype})  # type: ignore[call-overload]
    python = convert_python()
    try:
        done = subprocess.run(
            [python, "-m", "latbench.convert.litert", request],
            env=_child_env(),
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ArtifactError(f"the LiteRT converter ({python}) did not run: {exc}") from exc
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        last = lines[-1] if lines else f"exit status {done.returncode}"
        raise ArtifactError(f"cannot convert to LiteRT with {python}: {last}")


def _convert_here(request: dict) -> None:
    """The child's side: build the network, convert it, cast its weights if asked."""
    import torch

    from latbench.artifacts import ArtifactKey
    from latbench.spaces.builders import build_model

    try:
        import litert_torch
    except ImportError:
        sys.exit(
            f"{sys.executable} has no litert-torch; install 'latbench[convert]' in a separate environment and "
            f"point {PYTHON_ENV} at its python"
        )
    key = ArtifactKey(**request["key"])
    model = build_model(key.space, key.arch, classes=key.classes, seed=key.seed).eval()
    with torch.no_grad():
        edge = litert_torch.convert(model, (torch.zeros(key.input_shape),))
    path = Path(request["path"])
    if request["dtype"] == "float32":
        edge.export(str(path))
        return
    float_path = path.with_name(path.name + ".f32")
    try:
        edge.export(str(float_path))
        _cast_weights_fp16(float_path, path)
    finally:
        float_path.unlink(missing_ok=True)


def _cast_weights_fp16(source: Path, target: Path) -> None:
    from ai_edge_quantizer import qtyping, quantizer
    from ai_edge_quantizer.algorithm_manager import AlgorithmName

    q = quantizer.Quantizer(str(source))
    for op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
        q.add_weight_only_config(
            regex=".*",
            operation_name=getattr(qtyping.TFLOperationName, op),
            num_bits=16,
            algorithm_key=AlgorithmName.FLOAT_CASTING,
        )
    result = q.quantize(enable_progress_report=False)
    assert result.quantized_model is not None
    target.write_bytes(bytes(result.quantized_model))


if __name__ == "__main__":
    _convert_here(json.loads(sys.argv[1]))
