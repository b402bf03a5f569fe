"""Encoding tables on disk and in memory: one compact ``{space}-{kind}.npz`` per space and kind.

A file holds ``values`` (float32, one row per architecture), ``names`` (the feature names), ``arch_codes`` (the
architectures as the datasets store them: NB201 official indices, FBNet block ids) and ``meta`` (a JSON string:
seed, code version, settings, the SHA-256 of the architecture list). arch2vec files also hold the encoder's
weights under ``encoder/<parameter>``, so embeddings of new architectures come from the same network.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from latbench.datasets.storage import decode_archs, encode_archs
from latbench.hashing import archs_sha256
from latbench.paths import latbench_home
from latbench.predictor.encodings.errors import EncodingsError, EncodingsUnavailable
from latbench.spaces import get_space, space_names

KINDS: tuple[str, ...] = ("zcp", "arch2vec")
ENCODER_PREFIX = "encoder/"


def check(space: str, kind: str) -> tuple[str, str]:
    """Validated, lower-cased ``(space, kind)``; an unknown one is a one-line error naming the choices."""
    s, k = space.lower(), kind.lower()
    if s not in space_names():
        raise EncodingsError(f"no encodings for search space {space!r}; choose one of: {', '.join(space_names())}")
    if k not in KINDS:
        raise EncodingsError(f"unknown encoding kind {kind!r}; choose one of: {', '.join(KINDS)}")
    return s, k


def file_name(space: str, kind: str) -> str:
    return f"{space}-{kind}.npz"


def user_dir() -> Path:
    """``$LATBENCH_HOME/encodings``: where ``compute`` writes by default and ``load`` looks before the shipped data."""
    return latbench_home() / "encodings"


def shipped_path(space: str, kind: str) -> Any:
    """The package-data file of ``space`` and ``kind`` (a ``Traversable``; it may not exist)."""
    return resources.files("latbench.predictor").joinpath("data/encodings", file_name(space, kind))


def _lists_archs(space: str) -> bool:
    """Whether ``compute`` finds the architectures of ``space`` itself (a listed space, or a built-in dataset)."""
    from latbench.datasets import space_archs
    from latbench.datasets.errors import DatasetError

    try:
        space_archs(space)
    except DatasetError:
        return False
    return True


@dataclass(frozen=True)
class Encodings:
    """Feature rows of architectures: ``values[i]`` encodes ``archs[i]``; columns are ``names``.

    ``lookup`` returns rows for any architectures of the space, computing the ones the table lacks with the
    same settings (zero-cost proxies through the PyTorch builder, arch2vec through the stored encoder).
    """

    space: str
    kind: str
    names: tuple[str, ...]
    archs: tuple[str, ...]
    values: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    encoder: Mapping[str, np.ndarray] = field(default_factory=dict, repr=False)
    _computed: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.values.dtype != np.float32 or self.values.shape != (len(self.archs), len(self.names)):
            raise EncodingsError(
                f"{self.space}-{self.kind} encodings must be float32 of shape {(len(self.archs), len(self.names))}, "
                f"got {self.values.dtype} {self.values.shape}"
            )
        self.values.flags.writeable = False

    @cached_property
    def _row(self) -> dict[str, int]:
        return {a: i for i, a in enumerate(self.archs)}

    def lookup(self, archs: Sequence[str]) -> np.ndarray:
        """A new float32 ``[len(archs), len(names)]`` array; rows not in the table are computed, not refused.

        Computed rows are kept, so asking again for an architecture the table lacks costs nothing.
        """
        space = get_space(self.space)
        canonical = [a if a in self._row else space.canonical(a) for a in archs]
        missing = list(dict.fromkeys(a for a in canonical if a not in self._row and a not in self._computed))
        if missing:
            self._computed.update(zip(missing, self._compute(missing)))
        index = np.array([self._row.get(a, -1) for a in canonical], dtype=np.int64)
        if len(self.values):
            out = self.values[np.maximum(index, 0)]
        else:  # a table of no rows yet (a space without a computed one): every row is computed
            out = np.empty((len(canonical), len(self.names)), dtype=np.float32)
        for i in np.flatnonzero(index < 0):
            out[i] = self._computed[canonical[i]]
        return out

    def _compute(self, archs: list[str]) -> np.ndarray:
        if self.kind == "zcp":
            from latbench.predictor.encodings.zcp import compute_zcp, settings_from_meta

            table = compute_zcp(self.space, archs, **settings_from_meta(self.meta))
        else:
            from latbench.predictor.encodings.arch2vec import embed

            table = embed(self.space, archs, self.encoder, self.meta)
        return table.values


def save(enc: Encodings, path: str | Path) -> Path:
    """Write ``enc`` as one compressed npz (written to a temporary name, then renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(enc.meta) | {"archs_sha256": archs_sha256(enc.archs), "n_archs": len(enc.archs)}
    arrays: dict[str, np.ndarray] = {
        "values": np.ascontiguousarray(enc.values, dtype=np.float32),
        "names": np.array(enc.names),
        "arch_codes": encode_archs(enc.space, enc.archs),
        "meta": np.array(json.dumps(meta, sort_keys=True)),
    }
    arrays |= {ENCODER_PREFIX + k: np.asarray(v) for k, v in enc.encoder.items()}
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)  # type: ignore[arg-type]
    tmp.replace(path)
    return path


def read(data: bytes, space: str, kind: str, origin: str) -> Encodings:
    """Parse an encodings file's bytes; a damaged or mismatched file is an ``EncodingsError`` naming ``origin``."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            if meta.get("space") != space or meta.get("kind") != kind:
                raise EncodingsError(
                    f"{origin} holds {meta.get('space')}-{meta.get('kind')} encodings, not {space}-{kind}"
                )
            archs = decode_archs(space, npz["arch_codes"])
            names = tuple(str(n) for n in npz["names"])
            values = npz["values"]
            encoder = {k[len(ENCODER_PREFIX) :]: npz[k] for k in npz.files if k.startswith(ENCODER_PREFIX)}
    except (OSError, KeyError, ValueError, IndexError, EOFError, zipfile.BadZipFile) as exc:
        raise EncodingsError(f"cannot read encodings file {origin}: {exc}") from None
    if meta.get("archs_sha256") != archs_sha256(archs):
        raise EncodingsError(f"{origin}: the architecture list does not match its recorded hash; recompute it")
    return Encodings(space, kind, names, archs, values, meta, encoder)


def default_source(space: str, kind: str) -> Any:
    """The file ``load`` reads when given no path: the table computed into ``user_dir()`` if there is one, else
    the shipped one (``shipped_path``; it may not exist)."""
    own = user_dir() / file_name(space, kind)
    return own if own.is_file() else shipped_path(space, kind)


def load(space: str, kind: str, path: str | Path | None = None) -> Encodings:
    """The encodings of ``space`` of ``kind`` (``zcp``, ``arch2vec``); latbench ships them for nb201 and fbnet.

    ``path`` reads that file; by default a table computed into ``user_dir()`` wins over the one shipped with
    latbench, so a recomputed table replaces the shipped one without touching the installation.
    """
    space, kind = check(space, kind)
    source = Path(path) if path is not None else default_source(space, kind)
    if not source.is_file():
        where = source if path is not None else f"{user_dir()} (and none ships with latbench)"
        raise EncodingsUnavailable(
            f"no {space} {kind} encodings in {where}; compute them with: "
            f"latbench predictor encodings compute --space {space} --kind {kind}"
            + ("" if _lists_archs(space) else " --archs-file FILE (the architectures to cover, one a line)")
        )
    return read(source.read_bytes(), space, kind, str(source))
