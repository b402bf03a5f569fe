"""A dataset on disk: ``latency.npz`` (the float64 matrix and compact architecture codes) beside ``card.json``.

Architectures are stored as codes, not strings: official indices where the space lists its members (NB201:
int16), else the (n, genes) genome matrix in the smallest unsigned type (FBNet: uint8 block ids); a model set's
members, which have no genes, as their names (a unicode array) with each model's content hash and input shapes
(``model_sha256``, ``model_inputs``). ``card.json`` holds the metadata and the SHA-256 of ``latency.npz``,
checked on every load so a damaged or edited file is refused rather than read.

Codes mean something only to the space that wrote them: a plugin that reorders ``archs()`` or its genes, or
starts or stops listing its members, decodes them to other architectures. So the card also records how they were
encoded (``archs_encoding``) and the SHA-256 of the architecture strings they stand for (``archs_sha256``), and a
load decodes with the space as installed now and refuses (``ArchEncodingChanged``) what no longer decodes to them.
Cards written before these keys are checked against their content hash instead.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from latbench.datasets.errors import ArchEncodingChanged, DatasetError
from latbench.datasets.model import Dataset, DeviceMeta, ModelKey, official_indices, rebuild_hint
from latbench.errors import LatbenchError
from latbench.hashing import archs_sha256
from latbench.spaces import ModelSet, get_space

FORMAT = 1
LATENCY_FILE = "latency.npz"
CARD_FILE = "card.json"


class Readable(Protocol):
    """A directory to read from: a ``Path``, or a package-resource ``Traversable``."""

    def joinpath(self, *parts: str) -> Any: ...


def encoding(space: str) -> str:
    """How ``space`` stores architectures now: ``index`` (into ``archs()``), ``genes`` or ``names`` (model sets)."""
    if official_indices(space) is not None:
        return "index"
    return "names" if isinstance(get_space(space), ModelSet) else "genes"


def encode_archs(space: str, archs: tuple[str, ...]) -> np.ndarray:
    kind = encoding(space)
    if kind == "index":
        index = official_indices(space)
        assert index is not None
        dtype = np.int16 if len(index) <= 1 << 15 else np.int64
        return np.array([index[a] for a in archs], dtype=dtype)
    if kind == "names":
        return np.array(archs, dtype=np.str_)
    sp = get_space(space)
    return sp.to_genes_many(archs).astype(np.min_scalar_type(max(sp.genes) - 1))


def decode_archs(space: str, codes: np.ndarray) -> tuple[str, ...]:
    """The architectures ``codes`` stand for, read as they were written (indices, genomes or names) with the space
    as installed now; codes it cannot read are a ``DatasetError``, never an internal error."""
    sp = get_space(space)
    if codes.dtype.kind == "U":
        if not isinstance(sp, ModelSet):
            raise DatasetError(f"stored {space} architectures are model names, not codes of the space")
        return tuple(str(name) for name in codes.tolist())
    if codes.dtype.kind not in "iu":
        raise DatasetError(f"stored {space} architectures are {codes.dtype} values, not integer codes")
    try:
        if codes.ndim == 1:
            listed = sp.archs()
            if listed is None:
                raise DatasetError(
                    f"stored {space} architectures are indices into its archs(), which lists no members now"
                )
            if len(codes) and (int(codes.min()) < 0 or int(codes.max()) >= len(listed)):
                raise DatasetError(
                    f"stored {space} architecture indices go up to {int(codes.max())}, but its archs() lists "
                    f"{len(listed)} members now"
                )
            return tuple(listed[i] for i in codes.tolist())
        genes = sp.genes
        if codes.ndim != 2 or codes.shape[1] != len(genes):
            raise DatasetError(f"stored {space} architectures have shape {codes.shape}, expected (n, {len(genes)})")
        if len(codes) and np.any(codes.max(axis=0) >= np.array(genes)):
            raise DatasetError(f"stored {space} genomes have choices its genes {tuple(genes)} do not have now")
        return tuple(sp.from_genes_many(codes)) if len(codes) else ()
    except LatbenchError:
        raise
    except Exception as exc:  # a plugin's own code decodes; whatever it raises is a code it cannot read
        raise DatasetError(f"{space} cannot decode the stored architectures: {type(exc).__name__}: {exc}") from None


def card(ds: Dataset, data_sha256: str) -> dict[str, Any]:
    """What ``card.json`` holds: metadata only, with hashes of the values and of the data file."""
    return {
        "format": FORMAT,
        "name": ds.name,
        "space": ds.space,
        "n_archs": len(ds.archs),
        "archs_encoding": encoding(ds.space),
        "archs_sha256": archs_sha256(ds.archs),
        "devices": [m.as_dict() for m in ds.devices],
        "provenance": ds.provenance,
        "content_sha256": ds.content_sha256(),
        "data_sha256": data_sha256,
    }


def write(ds: Dataset, directory: Path) -> None:
    """Write ``ds`` into the existing, empty ``directory``."""
    arrays = {"latency": ds.latency, "archs": encode_archs(ds.space, ds.archs)}
    if ds.models is not None:
        arrays["model_sha256"] = np.array([k.sha256 for k in ds.models], dtype="<U64")
        arrays["model_inputs"] = np.array([k.input_shapes for k in ds.models], dtype=np.str_)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
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
        models = None
        if "model_sha256" in arrays.files:
            models = tuple(ModelKey(str(h), str(i)) for h, i in zip(arrays["model_sha256"], arrays["model_inputs"]))
    try:
        archs = decode_archs(meta["space"], codes)
    except DatasetError as exc:
        raise _changed(meta, str(exc)) from None
    if "archs_sha256" in meta and meta["archs_sha256"] != archs_sha256(archs):
        raise _changed(meta, "they decode to other architectures than it was built with")
    ds = Dataset(
        name=meta["name"],
        space=meta["space"],
        archs=archs,
        latency=latency,
        devices=tuple(DeviceMeta.from_dict(d) for d in meta["devices"]),
        provenance=meta["provenance"],
        builtin=builtin,
        models=models,
    )
    if ds.content_sha256() != meta.get("content_sha256"):
        if "archs_sha256" not in meta:
            raise _changed(meta, "its architectures and values no longer match the content hash on its card")
        raise DatasetError(
            f"the card of dataset {meta['name']!r} does not match its values (content hash): it was edited; remove "
            "the dataset and build or import it again"
        )
    return ds


def _changed(meta: dict[str, Any], why: str) -> ArchEncodingChanged:
    """The one error of a dataset whose stored architecture codes the space as installed now reads differently."""
    space = meta["space"]
    return ArchEncodingChanged(
        f"dataset {meta['name']!r} cannot be read: search space {space!r} encodes architectures differently from "
        f"when the dataset was built ({why}); its plugin changed the order of archs(), of its genes or of their "
        f"choices, or started or stopped listing archs(). Reinstall the plugin version it was built with, or "
        f"{rebuild_hint(meta['name'], space, meta['provenance'])}"
    )
