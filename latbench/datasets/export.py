"""Export a dataset for other tools: a long CSV or parquet table, or HELP-style per-device latency vectors.

Every export carries a dataset card (``card.json`` and ``card.md``: devices, counts, settings, environment,
provenance, license, and the SHA-256 of each file written). Long tables have the columns of the public tables in
``shared/data`` (``arch, arch_index, device, latency_ms``, by device then ``arch_index``); CSV latencies are the
shortest decimals that read back to the same float64, so ``import`` of an export gives the same values bit for bit.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from latbench.datasets.cards import describe, markdown
from latbench.datasets.errors import DatasetError
from latbench.datasets.model import Dataset
from latbench.datasets.tables import parquet_module
from latbench.spaces import get_space

FORMATS = ("csv", "parquet", "help")
COLUMNS = ("arch", "arch_index", "device", "latency_ms")
LAYOUTS = {
    "csv": "one row per measured (device, architecture): arch, arch_index, device, latency_ms (ms)",
    "parquet": "one row per measured (device, architecture): arch, arch_index (int64), device, latency_ms (float64)",
    "help": "latency/<device>.npy: a float64 vector of milliseconds per device (NaN = not measured); line i of "
    "archs.txt is the architecture of element i. NB201: all 15625 cells in official NAS-Bench-201 index order; "
    "other spaces: the dataset's architecture order",
}
SUFFIXES = {"csv": (".csv", ".csv.gz"), "parquet": (".parquet",)}


def _stem(path: Path, fmt: str) -> str:
    name = path.name
    for suffix in SUFFIXES[fmt]:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    raise DatasetError(f"--out for {fmt} must end in {' or '.join(SUFFIXES[fmt])}, got {path.name!r}")


def _replace(data: bytes, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _csv_bytes(ds: Dataset, gz: bool) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows((arch, index, device, str(value)) for arch, index, device, value in ds.long_rows())
    data = text.getvalue().encode()
    return gzip.compress(data, compresslevel=6, mtime=0) if gz else data


def _parquet_bytes(ds: Dataset) -> bytes:
    parquet = parquet_module()
    import pyarrow as pa

    rows = list(ds.long_rows())
    table = pa.table(
        {
            "arch": pa.array([r[0] for r in rows], pa.string()),
            "arch_index": pa.array([r[1] for r in rows], pa.int64()),
            "device": pa.array([r[2] for r in rows], pa.string()),
            "latency_ms": pa.array(np.array([r[3] for r in rows], dtype=np.float64), pa.float64()),
        }
    )
    sink = io.BytesIO()
    parquet.write_table(table, sink)
    return sink.getvalue()


def _help_files(ds: Dataset) -> dict[str, bytes]:
    listed = get_space(ds.space).archs()
    if listed is not None:
        archs = tuple(listed)
        vectors = np.full((len(ds.devices), len(listed)), np.nan, dtype=np.float64)
        vectors[:, ds.arch_indices()] = ds.latency
    else:
        archs, vectors = ds.archs, ds.latency
    files = {"archs.txt": ("\n".join(archs) + "\n").encode()}
    for device, vector in zip(ds.device_names, vectors):
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(vector, dtype="<f8"), allow_pickle=False)
        files[f"latency/{device}.npy"] = buffer.getvalue()
    return files


def _card_files(ds: Dataset, fmt: str, hashes: dict[str, str]) -> dict[str, bytes]:
    card: dict[str, Any] = describe(ds) | {"export": {"format": fmt, "layout": LAYOUTS[fmt], "files": hashes}}
    return {
        "card.json": (json.dumps(card, indent=1, allow_nan=False) + "\n").encode(),
        "card.md": markdown(card).encode(),
    }


def export(ds: Dataset, fmt: str, out: str | Path) -> Path:
    """Write ``ds`` as ``fmt`` to ``out`` with its card; return ``out``.

    ``csv`` (``.csv`` or deterministic ``.csv.gz``) and ``parquet`` write ``out`` plus ``<stem>.card.json`` and
    ``<stem>.card.md`` beside it, each replaced atomically. ``help`` writes the directory ``out`` (which must not
    exist yet) in one rename.
    """
    out = Path(out)
    if fmt not in FORMATS:
        raise DatasetError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if fmt == "help":
        return _export_help(ds, out)
    stem = _stem(out, fmt)
    data = _parquet_bytes(ds) if fmt == "parquet" else _csv_bytes(ds, gz=out.name.endswith(".gz"))
    if not out.parent.is_dir():
        raise DatasetError(f"cannot write {out}: directory {out.parent} does not exist")
    _replace(data, out)
    for name, card in _card_files(ds, fmt, {out.name: hashlib.sha256(data).hexdigest()}).items():
        _replace(card, out.with_name(f"{stem}.{name}"))
    return out


def _export_help(ds: Dataset, out: Path) -> Path:
    if out.exists():
        raise DatasetError(f"{out} already exists; the help format writes a new directory")
    if not out.parent.is_dir():
        raise DatasetError(f"cannot write {out}: directory {out.parent} does not exist")
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    (tmp / "latency").mkdir(parents=True)
    try:
        files = _help_files(ds)
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        hashes = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
        for name, data in _card_files(ds, "help", hashes).items():
            (tmp / name).write_bytes(data)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out
