"""Users' own model files: what they are, what their inputs need, and random inputs of the right type.

A file is known by its content hash, never its name; its format comes from its content, never its extension (a
LiteRT flatbuffer carries ``TFL3`` at bytes 4..8; an ONNX file must walk as a protobuf ``ModelProto`` with a graph,
and parse as one where ``onnx`` is installed), so a renamed file is measured by what it is.
Runtimes share the input rules here: a dynamic dimension is never guessed (a guessed sequence length would time
another model than the user's), integer inputs get small non-negative values so token ids and indices stay
valid, and latbench's own float32 artifacts draw exactly the values they always did. A model whose cost depends
on its input values (control flow, early exits) is timed on the user's own arrays instead (``InputData``), and a
graph with control-flow operators says so (``ModelFile.control_flow``). Nothing here imports torch or the
engines; ``onnx`` only where it is installed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from latbench.agents.runtimes.base import importable
from latbench.errors import ModelFileError, ModelInputError
from latbench.hashing import sha256_file

FORMATS = ("onnx", "tflite")
TFLITE_MAGIC = b"TFL3"
ONNX_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}
"""``ModelProto``'s fields in onnx.proto, number: wire type (0 a varint, 2 length-delimited); 1 is ``ir_version``,
7 ``graph``. A field of another number is skipped, as protobuf readers skip fields they do not know."""
MAX_ONNX_FIELDS = 100_000
"""The most top-level fields an ONNX file is walked through (real ones have a few dozen at most)."""
SHAPE = re.compile(r"^(?P<name>.+):(?P<dims>\d+(?:x\d+)*)$")
INTEGER_HIGH = 2
"""Integer inputs are drawn from [0, INTEGER_HIGH): valid as token ids, indices and masks of any model."""
CONTROL_FLOW = frozenset({"If", "Loop", "Scan"})
"""ONNX operators whose work depends on input values: a model holding one is timed on whichever branch or trip
count its inputs pick."""

Dim = int | str | None
"""A model's input dimension: a size, a symbolic name (dynamic), or ``None`` (dynamic, unnamed)."""


@dataclass(frozen=True)
class InputSpec:
    """One input of a loaded model as its engine describes it."""

    name: str
    dims: tuple[Dim, ...]
    dtype: np.dtype


def parse_input_shapes(texts: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """``["input_ids:1x128", ...]`` -> ``{"input_ids": (1, 128)}``; a clear error for anything else."""
    shapes: dict[str, tuple[int, ...]] = {}
    for text in texts:
        match = SHAPE.match(text.strip())
        if match is None:
            raise ModelInputError(f"bad input shape {text!r}: write NAME:DIMxDIM..., e.g. input:1x3x224x224")
        name, dims = match["name"], tuple(int(d) for d in match["dims"].split("x"))
        if 0 in dims:
            raise ModelInputError(f"bad input shape {text!r}: every dimension must be at least 1")
        if name in shapes and shapes[name] != dims:
            raise ModelInputError(
                f"input {name!r} is given two shapes: {format_shape(shapes[name])} and {match['dims']}"
            )
        shapes[name] = dims
    return shapes


def format_shape(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape)


def format_shapes(shapes: Mapping[str, Sequence[int]]) -> str:
    """``{"a": (1, 3)}`` -> ``"a:1x3"``, inputs separated by ``;``: the ``input_shapes`` column."""
    return ";".join(f"{name}:{format_shape(shape)}" for name, shape in shapes.items())


def resolve_shapes(
    model: str, specs: Sequence[InputSpec], given: Mapping[str, Sequence[int]] | None
) -> dict[str, tuple[int, ...]]:
    """The concrete shape of every input: the model's own, with ``given`` shapes filling its dynamic dimensions.

    ``given`` may name inputs the model lacks (one ``--input`` list serves every model of a run); a given shape
    must keep the model's rank and static sizes.
    """
    given = given or {}
    shapes: dict[str, tuple[int, ...]] = {}
    for spec in specs:
        wanted = given.get(spec.name)
        if wanted is None:
            dynamic = [(i, d) for i, d in enumerate(spec.dims) if not isinstance(d, int) or d < 1]
            if dynamic:
                i, d = dynamic[0]
                label = f" ({d!r})" if isinstance(d, str) and d else ""
                example = "x".join(str(d) if isinstance(d, int) and d >= 1 else "N" for d in spec.dims)
                raise ModelInputError(
                    f"model {model}: input {spec.name!r} has a dynamic dimension {i}{label}; "
                    f"give its shape with --input {spec.name}:{example}"
                )
            shapes[spec.name] = tuple(int(d) for d in spec.dims)  # type: ignore[arg-type]
            continue
        wanted = tuple(int(d) for d in wanted)
        if len(wanted) != len(spec.dims):
            raise ModelInputError(
                f"model {model}: input {spec.name!r} has {len(spec.dims)} dimensions, "
                f"--input gives {len(wanted)} ({format_shape(wanted)})"
            )
        for i, (d, w) in enumerate(zip(spec.dims, wanted, strict=True)):
            if isinstance(d, int) and d >= 1 and d != w:
                raise ModelInputError(
                    f"model {model}: input {spec.name!r} has static dimension {i} = {d}, --input gives {w}"
                )
        shapes[spec.name] = wanted
    return shapes


MAX_INPUT_ELEMENTS = 1 << 28
"""The most input values a model is fed (1 GiB of float32): shapes past it are a typo or a hostile job, and
drawing them would exhaust the device's memory before the runtime could refuse them."""


def random_inputs(
    specs: Sequence[InputSpec], shapes: Mapping[str, tuple[int, ...]], seed: int
) -> dict[str, np.ndarray]:
    """Seeded random data of each input's dtype, drawn in input order from one generator: floats standard
    normal (latbench's float32 artifacts get the values they always had), integers in [0, 2), booleans random."""
    total = sum(math.prod(shapes[spec.name]) for spec in specs)
    if total > MAX_INPUT_ELEMENTS:
        given = "; ".join(f"{spec.name}:{format_shape(shapes[spec.name])}" for spec in specs)
        raise ModelInputError(
            f"inputs of {total:,} values ({given}) are over the {MAX_INPUT_ELEMENTS:,} latbench feeds"
        )
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    for spec in specs:
        shape = shapes[spec.name]
        if spec.dtype == np.bool_:
            arrays[spec.name] = rng.integers(0, 2, shape).astype(np.bool_)
        elif np.issubdtype(spec.dtype, np.integer):
            arrays[spec.name] = rng.integers(0, INTEGER_HIGH, shape).astype(spec.dtype)
        elif np.issubdtype(spec.dtype, np.floating):
            arrays[spec.name] = rng.standard_normal(shape).astype(spec.dtype)
        else:
            raise ModelInputError(f"input {spec.name!r} has type {spec.dtype}, which latbench cannot fill")
    return arrays


def random_description(seed: int) -> str:
    """The ``input_data`` column of a result timed on ``random_inputs`` drawn from ``seed``."""
    return f"random(seed={seed})"


@dataclass(frozen=True)
class InputData:
    """A user's input arrays by input name (an ``.npz`` file, as ``numpy.savez`` writes it), fed to every model
    of a run that has inputs of those names; ``sha256`` is the file's, so a result says which data it ran on."""

    arrays: Mapping[str, np.ndarray]
    sha256: str
    path: Path

    @classmethod
    def open(cls, path: str | Path) -> InputData:
        """Read the arrays at ``path``; ``ModelInputError`` naming the file if it holds no arrays, or objects."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
        except FileNotFoundError:
            raise ModelInputError(f"input data {path}: no such file") from None
        except (OSError, ValueError) as exc:  # not a zip of .npy files, or arrays of Python objects
            raise ModelInputError(f"input data {path}: not an .npz file of arrays ({exc})") from None
        if not arrays:
            raise ModelInputError(f"input data {path}: holds no arrays")
        return cls(arrays, sha256_file(path), path)

    def describe(self) -> str:
        """The ``input_data`` column: the file's content, not its name."""
        return f"npz(sha256={self.sha256})"

    def shapes_with(self, given: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
        """The arrays' shapes, which fill dynamic dimensions as ``--input`` does, with the ``given`` ones; an input
        given two different shapes is refused."""
        shapes = {name: tuple(int(d) for d in array.shape) for name, array in self.arrays.items()}
        for name, shape in given.items():
            if name in shapes and shapes[name] != tuple(shape):
                raise ModelInputError(
                    f"input {name!r}: --input gives {format_shape(shape)}, {self.path.name} holds "
                    f"{format_shape(shapes[name]) or 'a scalar'}"
                )
        return {**shapes, **given}

    def check_covers(self, model: str, names: Sequence[str]) -> None:
        """``ModelInputError`` unless every input of ``model`` (its ``names``) has an array: half real data and
        half random would time neither."""
        missing = [n for n in names if n not in self.arrays]
        if missing:
            raise ModelInputError(
                f"model {model}: input {', '.join(map(repr, missing))} is not in {self.path.name} "
                f"(it holds {', '.join(map(repr, self.arrays))})"
            )


def model_inputs(
    model: str,
    specs: Sequence[InputSpec],
    shapes: Mapping[str, tuple[int, ...]],
    seed: int,
    data: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """A model's inputs in input order: ``data``'s arrays where given (each of its input's resolved shape, cast to
    its dtype where numpy casts within a kind: float64 to float32, int32 to int64), else ``random_inputs``."""
    if data is None:
        return random_inputs(specs, shapes, seed)
    arrays: dict[str, np.ndarray] = {}
    for spec in specs:
        if spec.name not in data:
            raise ModelInputError(f"model {model}: no input data for input {spec.name!r}")
        array = np.asarray(data[spec.name])
        if tuple(array.shape) != shapes[spec.name]:
            raise ModelInputError(
                f"model {model}: input data {spec.name!r} is {format_shape(array.shape) or 'a scalar'}, "
                f"the input takes {format_shape(shapes[spec.name]) or 'a scalar'}"
            )
        if not np.can_cast(array.dtype, spec.dtype, casting="same_kind"):
            raise ModelInputError(
                f"model {model}: input data {spec.name!r} is {array.dtype}, the input takes {spec.dtype}"
            )
        arrays[spec.name] = np.ascontiguousarray(array.astype(spec.dtype, copy=False))
    return arrays


def onnx_numpy_dtype(model: str, name: str, type_text: str) -> np.dtype:
    """ONNX Runtime's ``tensor(float)`` as a numpy dtype."""
    element = type_text.removeprefix("tensor(").removesuffix(")")
    names = {"float": "float32", "double": "float64", "float16": "float16", "bool": "bool"}
    try:
        return np.dtype(names.get(element, element))
    except TypeError:
        raise ModelInputError(
            f"model {model}: input {name!r} has type {type_text}, which latbench cannot fill"
        ) from None


@dataclass(frozen=True)
class ModelFile:
    """A user's model file: ``name`` for people, ``sha256`` for identity, ``format`` from its content.

    ``input_names`` are its inputs where readable without an engine (ONNX with the ``onnx`` package), else
    ``None``; ``opset`` is an ONNX file's default-domain opset.
    """

    path: Path
    name: str
    sha256: str
    format: str
    input_names: tuple[str, ...] | None = None
    opset: int | None = None
    external_data: tuple[str, ...] = ()
    """The files beside it that hold some of its tensors (ONNX external data): it cannot travel alone."""
    inputs: tuple[InputSpec, ...] | None = None
    """Its inputs as its graph declares them, where every one is a tensor of known rank and ``onnx`` is installed."""
    control_flow: tuple[str, ...] = ()
    """The ``CONTROL_FLOW`` operators its graph (subgraphs and functions included) holds, where ``onnx`` is
    installed: its latency may depend on its input values."""

    def input_shapes(self, given: Mapping[str, Sequence[int]] | None) -> dict[str, tuple[int, ...]] | None:
        """The shapes its inputs get with the ``given`` ones (``resolve_shapes``, naming the file as given):
        ``ModelInputError`` before any engine loads it, or ``None`` where only an engine can read its inputs (a
        LiteRT file, any file where ``onnx`` is missing), which then checks the same way."""
        return None if self.inputs is None else resolve_shapes(str(self.path), self.inputs, given)

    def check_self_contained(self) -> None:
        """``ModelFileError`` unless the file holds all its weights: a collector sends agents this one file."""
        if self.external_data:
            raise ModelFileError(
                f"model {self.path}: keeps tensor data in {', '.join(self.external_data)} beside it, and agents get "
                "one file: save it with its weights inside (onnx.save(model, path, save_as_external_data=False)), "
                "or time it here with `latbench measure --model`"
            )

    @classmethod
    def open(cls, path: str | Path) -> ModelFile:
        """Inspect the file at ``path``; ``ModelFileError`` (naming the file) if it is no model latbench can time."""
        path = Path(path)
        if path.is_dir():
            raise ModelFileError(f"model {path}: a directory, not a model file")
        if not path.is_file():
            raise ModelFileError(f"model {path}: no such file")
        with path.open("rb") as f:
            head = f.read(64)
        if head[4:8] == TFLITE_MAGIC:
            return cls(path, path.name, sha256_file(path), "tflite")
        broken = _onnx_layout(path)
        if broken is not None:
            if head[:1] == b"\x08":  # begins with ``ir_version``, as ONNX files do
                raise ModelFileError(f"model {path}: not a readable ONNX file ({broken})")
            raise ModelFileError(f"model {path}: not a LiteRT or ONNX model ({_describe(head)})")
        names, opset, external, inputs, control = _inspect_onnx(path)
        return cls(path, path.name, sha256_file(path), "onnx", names, opset, external, inputs, control)


def check_input_names(models: Sequence[ModelFile], given: Mapping[str, object]) -> None:
    """``ModelInputError`` where ``given`` names an input none of ``models`` has (one list of shapes serves them
    all); not checked unless every model's inputs are readable without an engine."""
    if not given or not models or any(m.input_names is None for m in models):
        return
    unknown = sorted(set(given) - {n for m in models for n in m.input_names or ()})
    if unknown:
        raise ModelInputError(
            f"no model has an input named {', '.join(map(repr, unknown))}; their inputs: "
            + "; ".join(f"{m.name}: {', '.join(m.input_names or ())}" for m in models)
        )


def _varint(f: BinaryIO) -> int | None:
    """The protobuf varint at ``f``'s position, or ``None`` where the file ends first or it runs past 10 bytes."""
    value = 0
    for shift in range(0, 70, 7):
        byte = f.read(1)
        if not byte:
            return None
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value
    return None


def _onnx_layout(path: Path) -> str | None:
    """Why ``path`` is no protobuf ``ModelProto`` with a graph, or ``None`` when it is one: only the top-level
    fields' keys and lengths are read, their values skipped, so any file costs a few reads and no memory."""
    size = path.stat().st_size
    seen: set[int] = set()
    with path.open("rb") as f:
        for _ in range(MAX_ONNX_FIELDS):
            at = f.tell()
            if at == size:
                break
            key = _varint(f)
            number, wire = (0, 0) if key is None else (key >> 3, key & 7)
            if number == 0 or wire not in (0, 1, 2, 5) or ONNX_FIELDS.get(number, wire) != wire:
                return f"byte {at:,} starts no ONNX model field"
            value = _varint(f) if wire in (0, 2) else 0  # a varint's value, a length-delimited field's length
            if value is None:
                return f"cut short in the field at byte {at:,}"
            if f.seek({0: 0, 1: 8, 2: value, 5: 4}[wire], 1) > size:
                return f"cut short: the field at byte {at:,} runs past the end of the file, at {size:,} bytes"
            seen.add(number)
        else:
            return f"over {MAX_ONNX_FIELDS:,} top-level fields"
    return None if {1, 7} <= seen else "no ONNX graph"


def _describe(head: bytes) -> str:
    """What a file that begins with ``head`` looks like, for a refusal."""
    if not head:
        return "an empty file"
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive, as PyTorch saves .pt checkpoints"
    if len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "a Python pickle"
    text = head.decode("utf-8", "ignore")
    if len(text.encode()) >= len(head) - 3 and all(c.isprintable() or c in "\t\r\n" for c in text):
        first = text.strip().splitlines()[0] if text.strip() else ""
        return f"text: {first[:40]!r}"
    return f"binary data beginning {head[:8].hex(' ')}"


def _inspect_onnx(
    path: Path,
) -> tuple[tuple[str, ...] | None, int | None, tuple[str, ...], tuple[InputSpec, ...] | None, tuple[str, ...]]:
    """An ONNX file's graph input names (initializers excluded), opset, external data files, input specs and
    control-flow operators; refuses a file that does not parse and external data outside the model's folder (ONNX
    Runtime refuses it itself, TVM's loader would read it)."""
    if not importable("onnx"):
        return None, None, (), None, ()
    import onnx
    from onnx.external_data_helper import uses_external_data

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises DecodeError and others for files that are not ONNX
        raise ModelFileError(f"model {path}: not a readable ONNX file ({type(exc).__name__}: {exc})") from None
    if not model.graph.node and not model.graph.output:
        raise ModelFileError(f"model {path}: not a readable ONNX file (no graph)")
    folder = path.resolve().parent
    external: dict[str, None] = {}
    for tensor in _all_tensors(model.graph):
        if uses_external_data(tensor):
            location = next((e.value for e in tensor.external_data if e.key == "location"), "")
            external[location] = None
            target = (folder / location).resolve()
            if not target.is_relative_to(folder):
                raise ModelFileError(
                    f"model {path}: tensor {tensor.name!r} keeps its data at {location!r}, outside the model's folder"
                )
            if not target.is_file():
                raise ModelFileError(
                    f"model {path}: tensor {tensor.name!r} keeps its data in {location!r}, which is missing"
                )
    initializers = {t.name for t in model.graph.initializer}
    declared = [i for i in model.graph.input if i.name not in initializers]
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    specs = [_input_spec(i) for i in declared]
    inputs = None if any(spec is None for spec in specs) else tuple(s for s in specs if s is not None)
    graphs = [model.graph, *(_subgraphs(model.graph))]
    ops = {n.op_type for g in graphs for n in g.node} | {n.op_type for f in model.functions for n in f.node}
    return tuple(i.name for i in declared), opset, tuple(external), inputs, tuple(sorted(ops & CONTROL_FLOW))


def _subgraphs(graph: Any) -> list[Any]:
    """Every graph nested in ``graph``'s node attributes (an ``If``'s branches, a ``Loop``'s body), recursively."""
    from onnx import AttributeProto

    found: list[Any] = []
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == AttributeProto.GRAPH:
                found += [attr.g, *_subgraphs(attr.g)]
            elif attr.type == AttributeProto.GRAPHS:
                for g in attr.graphs:
                    found += [g, *_subgraphs(g)]
    return found


def _input_spec(value: Any) -> InputSpec | None:
    """A graph input as ONNX Runtime reports it (a size, a symbolic name or ``None`` per dimension); ``None`` for
    one that is no tensor of known rank. A type numpy lacks becomes ``object``, which ``random_inputs`` refuses."""
    from onnx import helper

    if not value.type.HasField("tensor_type") or not value.type.tensor_type.HasField("shape"):
        return None
    tensor = value.type.tensor_type
    dims = tuple(d.dim_value if d.HasField("dim_value") else d.dim_param or None for d in tensor.shape.dim)
    try:
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.elem_type))
    except (KeyError, TypeError, ValueError):
        dtype = np.dtype(object)
    return InputSpec(value.name, dims, dtype)


def _all_tensors(graph: Any) -> list[Any]:
    """Every tensor of ``graph``: initializers, and tensors in node attributes and subgraphs."""
    from onnx import AttributeProto

    tensors: list[Any] = list(graph.initializer)
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == AttributeProto.TENSOR:
                tensors.append(attr.t)
            elif attr.type == AttributeProto.TENSORS:
                tensors.extend(attr.tensors)
            elif attr.type == AttributeProto.GRAPH:
                tensors.extend(_all_tensors(attr.g))
            elif attr.type == AttributeProto.GRAPHS:
                for g in attr.graphs:
                    tensors.extend(_all_tensors(g))
    return tensors
