"""PyTorch -> LiteRT with ``litert-torch``, in a separate Python process.

``litert-torch`` cannot live in the main environment; it runs in the interpreter that
``latbench.convert.environment`` finds, or sets up on first need. A conversion also takes seconds to tens of
seconds and gigabytes of JAX/MLIR machinery; a child process returns that memory and turns a converter crash
into an error.

float16 models are the float32 model with weights cast to float16 and a Dequantize op in front of each
Conv/FullyConnected (``ai-edge-quantizer``'s weight-only FLOAT_CASTING), as TensorFlow's float16 conversion does.
Casting is a step of its own (``Conversion.source``), so a float32 model already built is cast, not converted
again: the bytes are those of converting and casting in one go. int8 models are the float32 model statically
quantised the same way (``ai-edge-quantizer``'s ``static_wi8_ai8``: int8 weights and activations, inputs and
outputs included, MinMax ranges from the generated calibration inputs of ``latbench.convert.quantize``).

One child serves a whole batch (``convert_many``): starting it and importing torch and litert-torch costs
about 5 s, half as much as converting a small NB201 network. It reports each model on its own line as soon as it is
written, so the caller can move finished ones into place while the others convert; a model that fails is
reported and the child goes on with the next. A child that dies (a crash in the converter, the memory killer)
fails the model it was on, and a new child takes the rest. The child also keeps the one-model form
``python -m latbench.convert.litert '{"key": ..., "path": ..., "dtype": ...}'`` (exit status 1 on failure).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Generator, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import latbench
from latbench.convert.environment import PYTHON_ENV, ensure_converter
from latbench.errors import ArtifactError

DTYPES = ("float32", "float16", "int8")
TIMEOUT_S = 1800.0
"""How long the converter may take over one model before it is stopped."""
MODELS_PER_CHILD = 50
"""Models one child converts before a fresh one takes over: bounds what a long batch can pile up in memory
(one child over five NB201 networks: 630 MB after the first, then about 10 MB more a model), for one extra start
(~5 s) per 50 models."""


def _child_env(python: str) -> dict[str, str]:
    """The environment of the converter: this latbench importable, and the interpreter's ``bin`` on PATH."""
    root = str(Path(latbench.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env["PATH"] = os.pathsep.join((str(Path(python).parent), env.get("PATH", "")))
    return env


@dataclass(frozen=True)
class Conversion:
    """One model for the converter: convert ``key``'s network (an ``ArtifactKey``) to ``float32``, or take the
    float32 model already at ``source``; then, if ``float16`` is set, write its float16 cast there, and if ``int8``
    is set, its int8 quantisation."""

    key: Any
    float32: Path | None = None
    source: Path | None = None
    float16: Path | None = None
    int8: Path | None = None

    def __post_init__(self) -> None:
        derived = self.float16 is not None or self.int8 is not None
        if (self.float32 is None) == (self.source is None) or (self.source is not None and not derived):
            raise ValueError("a conversion writes a float32 model or derives float16 or int8 from an existing one")

    def request(self) -> dict[str, object]:
        return {
            "key": asdict(self.key),
            **{
                name: str(getattr(self, name))
                for name in ("float32", "source", "float16", "int8")
                if getattr(self, name)
            },
        }


@dataclass(frozen=True)
class Outcome:
    """What became of ``conversions[index]``: ``error`` is ``None`` when every file it asked for is written;
    ``converted`` says the float32 file is written even if the float16 cast then failed."""

    index: int
    error: str | None
    converted: bool


def convert_tflite(key: object, path: Path, dtype: str = "float32") -> None:
    """Write ``key``'s network (an ``ArtifactKey``) to ``path`` as a LiteRT model with ``dtype`` weights."""
    if dtype not in DTYPES:
        raise ArtifactError(f"LiteRT models are {' or '.join(DTYPES)}, not {dtype!r}")
    python = ensure_converter()
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as tmp:
        if dtype == "float32":
            conversion = Conversion(key, float32=path)
        else:
            conversion = Conversion(key, float32=Path(tmp) / "float32.tflite", **{dtype: path})
        for outcome in convert_many([conversion], python=python):
            if outcome.error is not None:
                raise ArtifactError(f"cannot convert to LiteRT with {python}: {outcome.error}")


def convert_many(
    conversions: Sequence[Conversion], timeout_s: float = TIMEOUT_S, python: str | None = None
) -> Generator[Outcome, None, None]:
    """Run ``conversions`` in as few children of ``python`` (default ``ensure_converter()``, which may set the
    converter up first) as possible, yielding each outcome as soon as the child reports it (in order). Closing
    the iterator early stops the child."""
    python = python or ensure_converter()
    pending = list(range(len(conversions)))
    while pending:
        batch, pending = pending[:MODELS_PER_CHILD], pending[MODELS_PER_CHILD:]
        done = 0
        for outcome in _run_child(python, [conversions[i] for i in batch], timeout_s):
            yield Outcome(batch[outcome.index], outcome.error, outcome.converted)
            done = outcome.index + 1
        pending = batch[done:] + pending


def _run_child(python: str, conversions: Sequence[Conversion], timeout_s: float) -> Iterator[Outcome]:
    """One child over ``conversions``: its outcomes, and on a child that dies, a failed outcome for the model it
    was on (all the rest too if it died before its first model: then no model is to blame)."""
    stdin = json.dumps([c.request() for c in conversions])
    with tempfile.TemporaryFile("w+") as stderr:
        try:
            child = subprocess.Popen(
                [python, "-m", "latbench.convert.litert", "-"],
                env=_child_env(python),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        except OSError as exc:
            message = f"the LiteRT converter ({python}) did not run: {exc}"
            yield from (Outcome(i, message, False) for i in range(len(conversions)))
            return
        lines = _lines(child.stdout)
        try:
            assert child.stdin is not None
            with contextlib.suppress(BrokenPipeError):  # a child that died at once: told below
                child.stdin.write(stdin)
                child.stdin.close()
            reported = 0
            while reported < len(conversions):
                try:
                    line = lines.get(timeout=timeout_s)
                except queue.Empty:
                    child.kill()
                    yield Outcome(reported, f"the LiteRT converter took over {timeout_s:.0f} s", False)
                    return
                if line is None:
                    break
                record = json.loads(line)
                if "fatal" in record:
                    yield from (Outcome(i, record["fatal"], False) for i in range(reported, len(conversions)))
                    return
                yield Outcome(record["index"], record.get("error"), record["converted"])
                reported = record["index"] + 1
            child.wait()
            if reported < len(conversions):
                stderr.seek(0)
                text = [line for line in stderr.read().strip().splitlines() if line.strip()]
                message = f"the LiteRT converter ({python}) died: {text[-1] if text else f'exit {child.returncode}'}"
                last = len(conversions) if reported == 0 else reported + 1
                yield from (Outcome(i, message, False) for i in range(reported, last))
        finally:
            if child.poll() is None:
                child.kill()
            child.wait()


def _lines(stream: IO[str] | None) -> queue.Queue[str | None]:
    """The lines of ``stream`` as a thread reads them, then ``None``: a queue waits with a timeout, a pipe not."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert stream is not None
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, name="litert-converter-output", daemon=True).start()
    return lines


def _serve(requests: list[dict[str, Any]]) -> None:
    """The child's side of ``convert_many``: one JSON line per model on what was stdout (anything the converter
    prints goes to stderr instead)."""
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    for record in _outcomes(requests):
        out.write(json.dumps(record) + "\n")
        out.flush()


def _outcomes(requests: list[dict[str, Any]]) -> Iterator[dict[str, object]]:
    """Do each request in turn, yielding what became of it: ``{"index", "converted"[, "error"]}``, or one
    ``{"fatal"}`` if litert-torch is missing."""
    try:
        convert = _converter() if any("source" not in r for r in requests) else None
    except ImportError as exc:
        yield {"fatal": str(exc)}
        return
    for index, request in enumerate(requests):
        converted = False
        try:
            source = request.get("source")
            if source is None:
                assert convert is not None
                convert(request["key"], Path(request["float32"]))
                source, converted = request["float32"], True
            if request.get("float16"):
                _cast_weights_fp16(Path(source), Path(request["float16"]))
            if request.get("int8"):
                _quantize_int8(Path(source), Path(request["int8"]), request["key"])
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            yield {"index": index, "error": f"{type(exc).__name__}: {first}".rstrip(": "), "converted": converted}
        else:
            yield {"index": index, "converted": converted}


def _converter() -> Any:
    """A function writing a key's network (as a dict) to a path as a float32 LiteRT model, once torch and
    litert-torch are imported; ``ImportError`` with the way out where litert-torch is missing."""
    import gc

    import torch

    from latbench.artifacts import ArtifactKey
    from latbench.spaces.builders import build_model

    try:
        import litert_torch
    except ImportError as exc:
        raise ImportError(
            f"{sys.executable} has no litert-torch; `latbench setup converter` sets up an environment that has it "
            f"(unless {PYTHON_ENV} names another python)"
        ) from exc

    def convert(fields: dict[str, Any], path: Path) -> None:
        key = ArtifactKey(**fields)
        model = build_model(key.space, key.arch, classes=key.classes, seed=key.seed).eval()
        with torch.no_grad():
            edge = litert_torch.convert(model, (torch.zeros(key.input_shape),))
        edge.export(str(path))
        del model, edge
        gc.collect()

    return convert


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


def _quantize_int8(source: Path, target: Path, key: dict[str, Any]) -> None:
    from ai_edge_litert import interpreter
    from ai_edge_quantizer import quantizer, recipe

    from latbench.convert.quantize import calibration_inputs

    signatures = interpreter.Interpreter(model_path=str(source)).get_signature_list()
    [(signature, spec)] = signatures.items()
    [name] = spec["inputs"]
    shape = (key["batch"], 3, key["resolution"], key["resolution"])
    q = quantizer.Quantizer(str(source), recipe.static_wi8_ai8())
    calibration = q.calibrate({signature: list(calibration_inputs(name, shape, key["seed"]))})
    result = q.quantize(calibration, enable_progress_report=False)
    assert result.quantized_model is not None
    target.write_bytes(bytes(result.quantized_model))


def _convert_one(request: dict[str, Any]) -> None:
    """The one-model form: ``{"key", "path", "dtype"}``; exit status 1 with the error on stderr on failure."""
    path = Path(request["path"])
    derived = request["dtype"] != "float32"
    float32 = path.with_name(path.name + ".f32") if derived else path
    try:
        [record] = _outcomes(
            [{"key": request["key"], "float32": str(float32), **({request["dtype"]: str(path)} if derived else {})}]
        )
    finally:
        if derived:
            float32.unlink(missing_ok=True)
    if record.get("fatal") or record.get("error"):
        sys.exit(str(record.get("fatal") or record["error"]))


if __name__ == "__main__":
    if sys.argv[1:] == ["-"]:
        _serve(json.load(sys.stdin))
    else:
        _convert_one(json.loads(sys.argv[1]))
