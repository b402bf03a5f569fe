"""A dataset on disk: ``latency.npz`` (the float64 matrix and compact architecture codes) beside ``card.json``.

Architectures are stored as codes, not strings: official indices where the space lists its members (NB201:
int16), else the (n, genes) genome matrix in the smallest unsigned type (FBNet: uint8 block ids); a model set's
members, which have no genes, as their names (a unicode array). ``card.json``
holds the metadata and the SHA-256 of ``latency.npz``, checked on every load so a damaged or edited file is
refused rather than read.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from latbench.datasets.errors import DatasetError
from latbench.datasets.model import Dataset, DeviceMeta, official_indices
from latbench.spaces import ModelSet, get_space

FORMAT = 1
LATENCY_FILE = "latency.npz"
CARD_FILE = "card.json"


class Readable(Protocol):
    """A directory to read from: a ``Path``, or a package-resource ``Traversable``."""

    def joinpath(self, *parts: str) -> Any: ...


def encode_archs(space: str, archs: tuple[str, ...]) -> np.ndarray:
    index = official_indices(space)
    if index is not None:
        dtype = np.int16 if len(index) <= 1 << 15 else np.int64
        return np.array([index[a] for a in archs], dtype=dtype)
    sp = get_space(space)
    if isinstance(sp, ModelSet):
        return np.array(archs, dtype=np.str_)
    return sp.to_genes_many(archs).astype(np.min_scalar_type(max(sp.genes) - 1))


def decode_archs(space: str, codes: np.ndarray) -> tuple[str, ...]:
    sp = get_space(space)
    listed = sp.archs()
    if listed is not None:
        return tuple(listed[i] for i in codes.tolist())
    if isinstance(sp, ModelSet):
        return tuple(str(name) for name in codes.tolist())
    if codes.ndim != 2 or codes.shape[1] != len(sp.genes):
        raise DatasetError(f"stored {space} architectures have shape {codes.shape}, expected (n, {len(sp.genes)})")
    return tuple(sp.from_genes_many(codes)) if len(codes) else ()


def card(ds: Dataset, data_sha256: str) -> dict[str, Any]:
    """What ``card.json`` holds: metadata only, with hashes of the values and of the data file."""
    return {
        "format": FORMAT,
        "name": ds.name,
        "space": ds.space,
        "n_archs": len(ds.archs),
        "devices": [m.as_dict() for m in ds.devices],
        "provenance": ds.provenance,
        "content_sha256": ds.content_sha256(),
        "data_sha256": data_sha256,
    }


def write(ds: Dataset, directory: Path) -> None:
    """Write ``ds`` into the existing, empty ``directory``."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, latency=ds.latency, archs=encode_archs(ds.space, ds.archs))
    data = buffer.getvalue()
    (directory / LATENCY_FILE).write_bytes(data)
    text = json.dumps(card(ds, hashlib.sha256(data).hexdigest()), indent=1, allow_nan=False)
    (directory / CARD_FILE).write_text(text + "\n")


def read_card(directory: Readable) -> dict[str, Any]:
    try:
        with directory.joinpath(CARD_FILE).open("rb") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read the dataset card in {directory}: {exc}") from exc
    if data.get("format") != FORMAT:
        raise DatasetError(f"dataset in {directory} has format {data.get('format')!r}; this latbench reads {FORMAT}")
    return data


def read(directory: Readable, builtin: bool = False) -> Dataset:
    meta = read_card(directory)
    try:
        with directory.joinpath(LATENCY_FILE).open("rb") as f:
            data = f.read()
    except OSError as exc:
        raise DatasetError(f"cannot read the latencies of dataset {meta['name']!r}: {exc}") from exc
    if hashlib.sha256(data).hexdigest() != meta["data_sha256"]:
        raise DatasetError(
            f"{LATENCY_FILE} of dataset {meta['name']!r} does not match its card's hash: the file "
            "was damaged or edited; remove the dataset and build or import it again"
        )
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        latency, codes = arrays["latency"], arrays["archs"]
    return Dataset(
        name=meta["name"],
        space=meta["space"],
        archs=decode_archs(meta["space"], codes),
        latency=latency,
        devices=tuple(DeviceMeta.from_dict(d) for d in meta["devices"]),
        provenance=meta["provenance"],
        builtin=builtin,
    )
