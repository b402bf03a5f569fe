"""A dataset on disk: ``latency.npz`` (the float64 matrix and compact architecture codes) beside ``card.json``.

Architectures are stored as codes, not strings: NB201 as int16 official indices, FBNet as a (n, 22) uint8 matrix
of block ids. ``card.json`` holds the metadata and the SHA-256 of ``latency.npz``, checked on every load so a
damaged or edited file is refused rather than read.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from latbench.datasets.errors import DatasetError
from latbench.datasets.model import Dataset, DeviceMeta, nb201_index
from latbench.spaces import fbnet, get_space

FORMAT = 1
LATENCY_FILE = "latency.npz"
CARD_FILE = "card.json"


class Readable(Protocol):
    """A directory to read from: a ``Path``, or a package-resource ``Traversable``."""

    def joinpath(self, *parts: str) -> Any: ...


def encode_archs(space: str, archs: tuple[str, ...]) -> np.ndarray:
    if space == "nb201":
        index = nb201_index()
        return np.array([index[a] for a in archs], dtype=np.int16)
    if space == "fbnet":
        codes = np.array([fbnet.parse_arch(a) for a in archs], dtype=np.uint8)
        return codes.reshape(len(archs), fbnet.NUM_LAYERS)
    raise DatasetError(f"no storage format for architectures of space {space!r}")


def decode_archs(space: str, codes: np.ndarray) -> tuple[str, ...]:
    if space == "nb201":
        by_index = get_space("nb201").archs()  # type: ignore[attr-defined]
        return tuple(by_index[i] for i in codes.tolist())
    if space == "fbnet":
        return tuple("-".join(fbnet.BLOCKS[b] for b in row) for row in codes.tolist())
    raise DatasetError(f"no storage format for architectures of space {space!r}")


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
