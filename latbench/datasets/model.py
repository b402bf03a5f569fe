"""The dataset model: latencies of one search space's architectures on several devices, with what stands behind them.

A ``Dataset`` is a float64 matrix (devices x architectures, milliseconds, NaN where a device did not measure an
architecture) plus one ``DeviceMeta`` per device (how it was measured, the environment, quality figures, source
and license) and the provenance of the whole. A model set's members (space ``model``) are known by a ``ModelKey``
(the file's content hash and the input shapes it was timed with); their names are labels for people.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import cache
from typing import Any

import numpy as np

import latbench
from latbench.datasets.errors import DatasetError
from latbench.spaces import MODEL_SET, get_space

DEVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:+-]{0,127}$")
"""The collector's device-name rule; names become file names in the ``help`` export."""


@dataclass(frozen=True)
class DeviceMeta:
    """Everything known about one device's column: measurement setup, environment, quality, source, license.

    Fields a source does not state stay ``None`` or empty (the public tables, for example, do not record threads).
    ``settings`` holds the measurement settings (warm-up, runs, time limits, thresholds), ``environment`` the
    machine snapshot, ``quality`` figures such as ``median_cv`` and ``unstable`` (results the stability checks
    flagged).
    """

    name: str
    source: str = ""
    license: str = ""
    description: str = ""
    runtime: str | None = None
    runtime_version: str | None = None
    provider: str | None = None
    batch: int | None = None
    threads: int | None = None
    resolution: int | None = None
    classes: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    quality: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeviceMeta:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise DatasetError(f"device metadata has unknown field(s): {', '.join(sorted(unknown))}")
        return cls(**data)


SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, order=True)
class ModelKey:
    """What a member of a model-set dataset is: a model file's content (SHA-256) and the input shapes it was timed
    with (the results' ``input_shapes`` column, inputs in the model's own order, as results keep them). Two results
    are of one member only when both agree, whatever the files were called and in whichever order the shapes are
    written (datasets stored before the order was the model's hold them in name order): a model is its content,
    and its shapes are part of what was measured."""

    sha256: str
    input_shapes: str = field(default="", compare=False)
    inputs: tuple[str, ...] = field(init=False, repr=False)
    """The shapes in name order: what keys compare and hash by."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(sorted(self.input_shapes.split(";"))) if self.input_shapes else ())

    @classmethod
    def of(cls, sha256: object, input_shapes: object) -> ModelKey:
        """The key of a result row's ``artifact_sha256`` and ``input_shapes``; a missing or malformed hash is a
        ``DatasetError``."""
        digest = str(sha256 or "").lower()
        if not SHA256.match(digest):
            raise DatasetError(f"artifact_sha256 {sha256!r} is not the SHA-256 of a model file")
        return cls(digest, str(input_shapes or ""))


def file_name(arch: str, sha256: str) -> str:
    """A model's file name from its ``arch``: ``simple.onnx@d4a8b859`` (a name made unique by its hash prefix,
    as ``latbench measure`` and campaigns do) -> ``simple.onnx``."""
    suffix = f"@{sha256[:8]}"
    return arch[: -len(suffix)] if arch.endswith(suffix) and len(arch) > len(suffix) else arch


def model_labels(names: dict[ModelKey, str]) -> dict[ModelKey, str]:
    """Distinct, readable names of models (``names``: each key's file name): the file name, with ``@`` and the
    hash prefix where different files share it, and ``[input shapes]`` where one file was timed at several."""
    sharing: dict[str, list[ModelKey]] = {}
    for key, name in names.items():
        sharing.setdefault(name, []).append(key)
    labels = {}
    for name, keys in sharing.items():
        hashes = Counter(k.sha256 for k in keys)
        for key in keys:
            hashed = f"{name}@{key.sha256[:8]}" if len(hashes) > 1 else name
            labels[key] = f"{hashed}[{key.input_shapes}]" if hashes[key.sha256] > 1 else hashed
    taken = Counter(labels.values())
    return {k: f"{names[k]}@{k.sha256}[{k.input_shapes}]" if taken[v] > 1 else v for k, v in labels.items()}


@dataclass(frozen=True)
class Dataset:
    """Latencies in milliseconds of ``archs`` (canonical strings of ``space``) on each device of ``devices``.

    ``latency[d, a]`` is device ``d`` on architecture ``a``; NaN means not measured. NB201 datasets keep their
    architectures in official index order; FBNet datasets keep the order they were given in.
    """

    name: str
    space: str
    archs: tuple[str, ...]
    latency: np.ndarray
    devices: tuple[DeviceMeta, ...]
    provenance: dict[str, Any] = field(default_factory=dict)
    builtin: bool = False
    models: tuple[ModelKey, ...] | None = None
    """A model set's members, one per arch: what ``combine`` matches them by. ``None`` for search spaces, and for
    model sets written before datasets recorded it (they load, but cannot be combined)."""

    def __post_init__(self) -> None:
        if self.models is not None:
            if self.space != MODEL_SET or len(self.models) != len(self.archs):
                raise DatasetError(f"dataset {self.name!r}: models must be given for each member of a model set")
            if len(set(self.models)) != len(self.models) or len(set(self.archs)) != len(self.archs):
                raise DatasetError(f"dataset {self.name!r} names a model twice")
        if self.latency.dtype != np.float64 or self.latency.shape != (len(self.devices), len(self.archs)):
            raise DatasetError(
                f"dataset {self.name!r}: latency must be float64 of shape {(len(self.devices), len(self.archs))}, "
                f"got {self.latency.dtype} {self.latency.shape}"
            )
        names = [d.name for d in self.devices]
        bad = [n for n in names if not DEVICE_NAME.match(n)]
        if bad:
            raise DatasetError(
                f"invalid device name(s) {', '.join(map(repr, bad[:5]))}: use letters, digits and "
                "'._@:+-', starting with a letter or digit"
            )
        if len(set(names)) != len(names):
            raise DatasetError(f"dataset {self.name!r} names a device twice: {_duplicates(names)}")
        self.latency.flags.writeable = False

    @property
    def device_names(self) -> list[str]:
        return [d.name for d in self.devices]

    def _row(self, device: str) -> int:
        try:
            return self.device_names.index(device)
        except ValueError:
            raise DatasetError(
                f"dataset {self.name!r} has no device {device!r}; it has: {', '.join(self.device_names)}"
            ) from None

    def device(self, name: str) -> DeviceMeta:
        return self.devices[self._row(name)]

    def vector(self, device: str) -> np.ndarray:
        """The device's latencies over ``archs`` (read-only, NaN where not measured)."""
        return self.latency[self._row(device)]

    def measured(self, device: str) -> int:
        return int(np.count_nonzero(~np.isnan(self.vector(device))))

    def coverage(self, device: str) -> float:
        """The fraction of this dataset's architectures the device measured."""
        return self.measured(device) / len(self.archs) if self.archs else 0.0

    def arch_indices(self) -> np.ndarray:
        """The official index of each architecture where the space lists its members (NB201), else its position."""
        index = official_indices(self.space)
        if index is not None:
            return np.array([index[a] for a in self.archs], dtype=np.int64)
        return np.arange(len(self.archs), dtype=np.int64)

    def select(self, devices: Sequence[str], name: str | None = None) -> Dataset:
        """The same dataset restricted to ``devices``, in that order; under a new ``name`` it is no built-in."""
        rows = [self._row(d) for d in devices]
        return replace(
            self,
            name=name or self.name,
            builtin=self.builtin and name is None,
            latency=self.latency[rows].copy(),
            devices=tuple(self.devices[r] for r in rows),
        )

    def long_rows(self) -> Iterator[tuple[str, int, str, float]]:
        """``(arch, arch_index, device, latency_ms)`` for every measured pair, by device then arch index."""
        indices = self.arch_indices()
        order = np.argsort(indices, kind="stable")
        for d, meta in enumerate(self.devices):
            row = self.latency[d]
            for a in order[~np.isnan(row[order])]:
                yield self.archs[a], int(indices[a]), meta.name, float(row[a])

    def content_sha256(self) -> str:
        """A hash of the values alone (space, archs, devices, float64 latencies), the same in every format."""
        digest = hashlib.sha256()
        digest.update(self.space.encode() + b"\0")
        digest.update("\n".join(self.archs).encode() + b"\0")
        digest.update("\n".join(self.device_names).encode() + b"\0")
        digest.update(np.ascontiguousarray(self.latency, dtype="<f8").tobytes())
        if self.models is not None:
            digest.update(b"\0" + "\n".join(f"{k.sha256} {';'.join(k.inputs)}" for k in self.models).encode())
        return digest.hexdigest()


def official_indices(space: str) -> dict[str, int] | None:
    """Canonical string -> official index where the space lists its members (``SearchSpace.archs``), else ``None``."""
    return _official_indices(get_space(space).name)


@cache
def _official_indices(space: str) -> dict[str, int] | None:
    listed = get_space(space).archs()
    return None if listed is None else {arch: i for i, arch in enumerate(listed)}


def _duplicates(names: Sequence[str]) -> str:
    return ", ".join(sorted(name for name, count in Counter(names).items() if count > 1))


def ordered_archs(space: str, archs: Sequence[str]) -> tuple[str, ...]:
    """Distinct architectures in a dataset's order: official index where the space has one, else first appearance."""
    unique = list(dict.fromkeys(archs))
    index = official_indices(space)
    if index is not None:
        unique.sort(key=index.__getitem__)
    return tuple(unique)


def combine(datasets: Sequence[Dataset], name: str = "combined") -> Dataset:
    """One view of several datasets of the same space: their devices side by side, by name.

    The architectures are the union (NaN where a device did not measure one); each part's provenance is kept,
    and its license notice carried over. A device name found in two datasets is an error: rename one side with
    ``prefix`` when importing or building. Model sets are matched by ``ModelKey``, never by name: one model timed
    at the same shapes is one column whatever its files were called, and two models (or shapes) never share one.
    """
    if not datasets:
        raise DatasetError("combine needs at least one dataset")
    spaces = {d.space for d in datasets}
    if len(spaces) > 1:
        listing = ", ".join(f"{d.name} ({d.space})" for d in datasets)
        raise DatasetError(f"cannot combine datasets of different search spaces: {listing}")
    for ds in datasets:
        if ds.space == MODEL_SET and ds.models is None:
            hint = rebuild_hint(ds.name, ds.space, ds.provenance)
            raise DatasetError(
                f"dataset {ds.name!r} is a model set written before datasets recorded each model's content hash "
                f"and input shapes, so its models cannot be matched to others' by what they are; {hint}"
            )
    owner: dict[str, str] = {}
    for ds in datasets:
        for device in ds.device_names:
            if device in owner:
                raise DatasetError(
                    f"device {device!r} is in both {owner[device]!r} and {ds.name!r}; re-import or rebuild one "
                    "of them with --prefix to tell them apart"
                )
            owner[device] = ds.name
    if len(datasets) == 1:
        return replace(datasets[0], name=name, builtin=False)
    space = datasets[0].space
    archs, models, columns = _union(space, datasets)
    latency = np.full((len(owner), len(archs)), np.nan, dtype=np.float64)
    row = 0
    for ds, where in zip(datasets, columns):
        latency[row : row + len(ds.devices), where] = ds.latency
        row += len(ds.devices)
    sources = {ds.name: {k: v for k, v in ds.provenance.items() if k != "notice"} for ds in datasets}
    provenance = new_provenance("combined", datasets=sources)
    notices = list(dict.fromkeys(ds.provenance["notice"] for ds in datasets if ds.provenance.get("notice")))
    if notices:
        provenance["notice"] = "\n\n".join(notices)
    return Dataset(
        name=name,
        space=space,
        archs=archs,
        latency=latency,
        devices=tuple(m for ds in datasets for m in ds.devices),
        provenance=provenance,
        models=models,
    )


def _union(
    space: str, datasets: Sequence[Dataset]
) -> tuple[tuple[str, ...], tuple[ModelKey, ...] | None, list[np.ndarray]]:
    """The members of all ``datasets``, and where each dataset's columns go among them: architectures by their
    canonical strings, models by their keys (named after the first file name seen, disambiguated)."""
    if space != MODEL_SET:
        archs = ordered_archs(space, [a for ds in datasets for a in ds.archs])
        position = {a: i for i, a in enumerate(archs)}
        return archs, None, [np.array([position[a] for a in ds.archs], dtype=np.int64) for ds in datasets]
    names: dict[ModelKey, str] = {}
    for ds in datasets:
        assert ds.models is not None
        for arch, key in zip(ds.archs, ds.models):
            names.setdefault(key, file_name(arch, key.sha256))
    labels = model_labels(names)
    index = {key: i for i, key in enumerate(names)}
    columns = [np.array([index[k] for k in ds.models or ()], dtype=np.int64) for ds in datasets]
    return tuple(labels[k] for k in names), tuple(names), columns


def rebuild_hint(name: str, space: str, provenance: dict[str, Any]) -> str:
    """How to make dataset ``name`` again from what it was made of, as its provenance records it."""
    if provenance.get("kind") == "import":
        file = provenance.get("file", "FILE")
        return f"import it again: latbench dataset import {file} --space {space} --name {name} --force"
    if provenance.get("kind") == "combined":
        parts = " ".join(provenance.get("datasets") or ["DATASET..."])
        return f"combine its parts again: latbench dataset combine {parts} --name {name} --force"
    if provenance.get("campaigns"):
        source = " ".join(f"--campaign {c['campaign']}" for c in provenance["campaigns"])
    elif provenance.get("campaign"):
        source = f"--campaign {provenance['campaign']}"
    else:
        source = f"--from-results {provenance.get('results_file', 'FILE')}"
    return f"build it again: latbench dataset build {source} --name {name} --force"


def new_provenance(kind: str, **details: Any) -> dict[str, Any]:
    """Provenance of a dataset made now: what made it (``kind``), when, by which latbench, from what."""
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return {"kind": kind, "created_at": created, "latbench_version": latbench.__version__, **details}
