"""Model files of benchmark networks (ONNX, LiteRT, torch rebuild specs) and the on-disk cache that builds each once.

An artifact is one self-contained file of a network in one *format*: ``onnx`` (weights inside, no external
data), ``tflite`` and ``fp16.tflite`` (LiteRT, float32 and float16 weights; see ``latbench.convert``), or
``torch.json`` (what the torch runtime needs to rebuild the network; see ``latbench.convert.torchspec``), and
``int8.onnx`` and ``int8.tflite``, the ONNX and LiteRT networks statically quantised to int8
(``latbench.convert.quantize``, ``latbench.convert.litert``; a precision's formats per runtime are in
``latbench.precision``). Every
format has a fixed input shape ``(batch, 3, resolution, resolution)`` and one output ``(batch, classes)``;
ONNX names them ``input`` and ``logits``. The SHA-256 recorded beside a file identifies the exact model a
latency was measured on; the cache names files by ``ArtifactKey.digest(format)``.

Exporter: torch's TorchScript exporter (``dynamo=False``). On a 2-core machine (torch 2.13, CPU) it exported
NB201 networks in 0.22-0.40 s and FBNet networks in 0.31-0.39 s, against 3.7-4.5 s and 4.4-5.2 s for the
``torch.export`` exporter (``dynamo=True``, whose ``torch.export`` trace alone takes about 3.4 s); both wrote
byte-identical files on repeated exports and the same operator graph (BatchNorm folded into Conv). A space of
15,625 cells is an hour of exports with the first and most of a day with the second. The TorchScript exporter
is deprecated since torch 2.9 but present in the torch that the ``build`` extra pins; switching exporter
changes the bytes, so it goes with a new ``BUILDER_VERSION``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Generator, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from latbench.errors import ArtifactError, LatbenchError, MissingDependency
from latbench.hashing import sha256_file
from latbench.progress import Progress, notify
from latbench.spaces import get_space

OPSET = 17
"""ONNX opset of every artifact: supported by ONNX Runtime, TensorRT 8.6+, TVM and onnx2tf alike."""
BUILDER_VERSION = "1"
"""Bump when the builders or the exporter change the bytes produced for the same key."""
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
CACHE_ENV = "LATBENCH_CACHE_DIR"
FORMATS = ("onnx", "tflite", "fp16.tflite", "torch.json", "int8.onnx", "int8.tflite")
"""Artifact formats, named as the file suffix a runtime loads (``Runtime.artifact_format``)."""
LITERT_FORMATS = ("tflite", "fp16.tflite", "int8.tflite")
"""Formats made by the LiteRT converter, which ``ArtifactCache`` runs once for many keys."""
LITERT_DTYPES = {"tflite": "float32", "fp16.tflite": "float16", "int8.tflite": "int8"}
"""The converter's dtype of each LiteRT format; the others are derived from the float32 model."""


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ArtifactError(f"unknown artifact format {fmt!r}; known: {', '.join(FORMATS)}")
    return fmt


@dataclass(frozen=True)
class ArtifactKey:
    """Everything that determines an artifact's bytes; ``arch`` must be the space's canonical string."""

    space: str
    arch: str
    batch: int
    resolution: int
    classes: int
    opset: int
    seed: int

    def __post_init__(self) -> None:
        s = get_space(self.space)
        if s.name != self.space:
            raise LatbenchError(f"artifact keys name spaces as {s.name!r}, got {self.space!r}")
        if s.canonical(self.arch) != self.arch:
            raise LatbenchError(f"artifact keys take canonical architectures: {s.canonical(self.arch)!r}")
        s.validate_resolution(self.resolution)
        if self.batch < 1 or self.classes < 1:
            raise LatbenchError(f"batch and classes must be at least 1, got {self.batch} and {self.classes}")

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, 3, self.resolution, self.resolution)

    @property
    def output_shape(self) -> tuple[int, int]:
        return (self.batch, self.classes)

    def digest(self, fmt: str = "onnx") -> str:
        """Hex SHA-256 of the fields, ``BUILDER_VERSION``, the space's own ``builder_version`` and the format: the
        artifact's name in the cache.

        The format joins the hashed fields only when it is not ``onnx``, and the space's builder version only when
        the space sets one (a plugin's), so ONNX digests of the built-in spaces (stored by collectors) stay what
        they were before other formats and plugin spaces existed.
        """
        check_format(fmt)
        fields: dict[str, object] = {"builder_version": BUILDER_VERSION, **asdict(self)}
        if fmt != "onnx":
            fields["format"] = fmt
        space_version = get_space(self.space).builder_version
        if space_version:
            fields["space_builder_version"] = space_version
        return hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


REFERENCE_ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|"
"""The NB201 cell timed between measurements as the machine's speed gauge (about 1 ms on a server core)."""
REFERENCE_KEY = ArtifactKey(space="nb201", arch=REFERENCE_ARCH, batch=1, resolution=32, classes=10, opset=OPSET, seed=0)
"""The drift-probe model: ``latbench measure`` times it, and every collector job names it in the campaign's format."""


@dataclass(frozen=True)
class Artifact:
    """A verified model file and what a runtime needs to feed it."""

    path: Path
    sha256: str
    key: ArtifactKey
    input_name: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    format: str = "onnx"


def export_onnx(key: ArtifactKey, path: Path) -> None:
    """Build ``key``'s network and write it to ``path`` as ONNX, keeping the exporter's warnings off the console."""
    try:
        import torch

        from latbench.spaces.builders import build_model
    except ImportError as exc:
        raise MissingDependency("torch", "build", "building model artifacts") from exc
    model = build_model(key.space, key.arch, classes=key.classes, seed=key.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.zeros(key.input_shape),),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            opset_version=key.opset,
            dynamo=False,
        )


def export(key: ArtifactKey, fmt: str, path: Path) -> None:
    """Write ``key``'s network to ``path`` in format ``fmt``: ONNX here, the others by ``latbench.convert``."""
    if fmt == "onnx":
        export_onnx(key, path)
        return
    from latbench import convert

    if fmt == "torch.json":
        convert.write_torch_spec(key, path)
    elif fmt == "int8.onnx":
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as scratch:
            float32 = Path(scratch) / "float32.onnx"
            export_onnx(key, float32)
            convert.quantize_onnx(float32, path, INPUT_NAME, key.input_shape, key.seed)
    else:
        convert.convert_tflite(key, path, dtype=LITERT_DTYPES[fmt])


def default_root() -> Path:
    """``$LATBENCH_CACHE_DIR`` if set, else ``~/.cache/latbench/artifacts``."""
    root = os.environ.get(CACHE_ENV)
    return Path(root) if root else Path.home() / ".cache" / "latbench" / "artifacts"


@contextlib.contextmanager
def _staged(final: Path) -> Iterator[Path]:
    """A temporary path beside ``final`` that replaces it atomically on success and vanishes on failure."""
    fd, name = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


class ArtifactCache:
    """Artifacts on disk, named by key digest: ``<digest>.<format>`` and its manifest ``<digest>.json``.

    The model file is written before its manifest and each is moved into place whole, so a manifest only ever
    describes a complete file; a file that no longer hashes to its manifest's SHA-256 counts as missing.
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    def _paths(self, key: ArtifactKey, fmt: str) -> tuple[Path, Path]:
        digest = key.digest(fmt)
        return self.root / f"{digest}.{fmt}", self.root / f"{digest}.json"

    @staticmethod
    def _read(manifest: Path) -> Artifact | None:
        """The artifact a manifest describes, unverified; ``None`` for a missing or malformed manifest."""
        try:
            record = json.loads(manifest.read_text())
            key = ArtifactKey(**record["key"])
            fmt = check_format(record.get("format", "onnx"))
            artifact = Artifact(
                path=manifest.with_name(f"{manifest.stem}.{fmt}"),
                sha256=record["sha256"],
                key=key,
                input_name=record["input_name"],
                input_shape=tuple(record["input_shape"]),
                output_shape=tuple(record["output_shape"]),
                format=fmt,
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError, LatbenchError):
            return None
        return artifact if manifest.stem == key.digest(fmt) else None

    @staticmethod
    def _intact(artifact: Artifact | None) -> bool:
        return artifact is not None and artifact.path.is_file() and sha256_file(artifact.path) == artifact.sha256

    def get(self, key: ArtifactKey, fmt: str = "onnx") -> Artifact | None:
        """The cached artifact of ``key`` in format ``fmt`` if its file is intact."""
        artifact = self._read(self._paths(key, fmt)[1])
        return artifact if self._intact(artifact) else None

    def find(self, sha256: str) -> Artifact | None:
        """The intact cached artifact whose file hashes to ``sha256``, whatever its key."""
        for manifest in sorted(self.root.glob("*.json")):
            artifact = self._read(manifest)
            if artifact is not None and artifact.sha256 == sha256 and self._intact(artifact):
                return artifact
        return None

    def build(self, key: ArtifactKey, fmt: str = "onnx") -> Artifact:
        """The artifact of ``key`` in format ``fmt``, exported now only if the cache lacks an intact one."""
        cached = self.get(key, fmt)
        if cached is not None:
            return cached
        if fmt in LITERT_FORMATS:
            [(_, result)] = self._convert([key], fmt)
            if isinstance(result, ArtifactError):
                raise result
            return result
        model = self._paths(key, fmt)[0]
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with _staged(model) as tmp:
                export(key, fmt, tmp)
                sha256 = sha256_file(tmp)
            return self._record(key, fmt, sha256)
        except OSError as exc:
            raise ArtifactError(f"cannot write the artifact of {key.arch!r} to {self.root}: {exc}") from exc

    def _record(self, key: ArtifactKey, fmt: str, sha256: str) -> Artifact:
        """Write the manifest of ``key``'s model file, already in place with hash ``sha256``."""
        model, manifest = self._paths(key, fmt)
        record = {
            "key": asdict(key),
            "format": fmt,
            "sha256": sha256,
            "input_name": INPUT_NAME,
            "input_shape": list(key.input_shape),
            "output_shape": list(key.output_shape),
        }
        with _staged(manifest) as tmp:
            tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        return Artifact(model, sha256, key, INPUT_NAME, key.input_shape, key.output_shape, fmt)

    def _place(self, key: ArtifactKey, fmt: str, written: Path) -> Artifact:
        """Move a finished model file into the cache (atomically: same file system) and record it."""
        try:
            sha256 = sha256_file(written)
            os.replace(written, self._paths(key, fmt)[0])
            return self._record(key, fmt, sha256)
        except OSError as exc:
            raise ArtifactError(f"cannot write the artifact of {key.arch!r} to {self.root}: {exc}") from exc

    def _convert(self, keys: list[ArtifactKey], fmt: str) -> Iterator[tuple[ArtifactKey, Artifact | ArtifactError]]:
        """Convert ``keys`` to LiteRT in one converter process, placing each model as soon as it is written.

        A float16 model is the float32 artifact of the same key with its weights cast (what converting to
        float16 in one go gives, byte for byte), and an int8 model is it quantised: a cached float32 artifact is
        only cast or quantised, and a missing one is converted, cached as well, then cast or quantised.
        """
        from latbench.convert.litert import Conversion, convert_many

        try:
            self.root.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=self.root, prefix=".converting."))
        except OSError as exc:
            error = ArtifactError(f"cannot write artifacts to {self.root}: {exc}")
            yield from ((key, error) for key in keys)
            return
        with contextlib.ExitStack() as stack:  # the converter stops before its files are removed
            stack.callback(shutil.rmtree, staging, ignore_errors=True)
            conversions = []
            for key in keys:
                derived = fmt != "tflite"
                cached = self.get(key, "tflite") if derived else None
                float32 = None if cached else staging / f"{key.digest('tflite')}.tflite"
                target = {LITERT_DTYPES[fmt]: staging / f"{key.digest(fmt)}.{fmt}"} if derived else {}
                conversions.append(Conversion(key, float32, cached.path if cached else None, **target))
            outcomes = stack.enter_context(contextlib.closing(convert_many(conversions)))
            for outcome in outcomes:
                conversion = conversions[outcome.index]
                key = conversion.key
                try:
                    if outcome.converted:
                        assert conversion.float32 is not None
                        artifact = self._place(key, "tflite", conversion.float32)
                    if outcome.error is not None:
                        raise ArtifactError(f"cannot convert {key.space} {key.arch!r} to LiteRT: {outcome.error}")
                    made = conversion.float16 or conversion.int8
                    if made is not None:
                        artifact = self._place(key, fmt, made)
                    yield key, artifact
                except ArtifactError as exc:
                    yield key, exc

    def iter_build(
        self, keys: Iterable[ArtifactKey], fmt: str = "onnx"
    ) -> Generator[tuple[ArtifactKey, Artifact | ArtifactError], None, None]:
        """Each of ``keys`` (as often as it is given) with its artifact or the ``ArtifactError`` that stopped it,
        as soon as it is done: cached ones first, then those built now. LiteRT formats convert all missing keys
        in one converter process, whose start and imports cost as much as a conversion; closing the iterator
        early stops it."""
        check_format(fmt)
        todo = list(keys)
        if fmt not in LITERT_FORMATS:
            for key in todo:
                try:
                    yield key, self.build(key, fmt)
                except ArtifactError as exc:
                    yield key, exc
            return
        missing: dict[ArtifactKey, int] = {}
        for key in todo:
            cached = self.get(key, fmt) if key not in missing else None
            if cached is not None:
                yield key, cached
            else:
                missing[key] = missing.get(key, 0) + 1
        if missing:
            for key, result in self._convert(list(missing), fmt):
                yield from ((key, result) for _ in range(missing[key]))

    def build_many(
        self, keys: Iterable[ArtifactKey], progress: Progress | None = None, fmt: str = "onnx"
    ) -> list[Artifact]:
        """The artifact of each key, in order (see ``iter_build``); ``progress`` hears stage ``export`` before the
        first and after each.

        A key that fails does not stop the others: they are all built and kept in the cache, then one
        ``ArtifactError`` names every key that failed.
        """
        todo = list(keys)
        total = len(todo)
        built: dict[ArtifactKey, Artifact] = {}
        failed: dict[ArtifactKey, ArtifactError] = {}
        notify(progress, "export", 0, total)
        for done, (key, result) in enumerate(self.iter_build(todo, fmt), start=1):
            if isinstance(result, ArtifactError):
                failed[key] = result
            else:
                built[key] = result
            notify(progress, "export", done, total)
        errors = list(failed.values())
        if len(errors) == 1:
            raise errors[0]
        if errors:
            shown = "; ".join(str(exc) for exc in errors[:3]) + (
                f"; and {len(errors) - 3} more" if len(errors) > 3 else ""
            )
            raise ArtifactError(
                f"{len(errors)} of {len(set(todo))} {fmt} artifacts failed (the others are built): {shown}"
            )
        return [built[key] for key in todo]


__all__ = ["BUILDER_VERSION", "FORMATS", "OPSET", "Artifact", "ArtifactCache", "ArtifactKey", "export", "export_onnx"]
