"""Export a dataset for other tools: a long or wide CSV or parquet table, or HELP-style per-device latency vectors.

Every export carries a dataset card (``card.json`` and ``card.md``: devices, counts, settings, environment,
provenance, license, and the SHA-256 of each file written). Long tables have the columns of the public tables in
``shared/data`` (``arch, arch_index, device, latency_ms``, by device then ``arch_index``); CSV latencies are the
shortest decimals that read back to the same float64, so ``import`` of an export gives the same values bit for bit.
Wide tables have one row per measured architecture (``arch, arch_index, unit``, then one column per device, empty
where the device did not measure the architecture), the shape ``import`` detects as wide; ``unit`` (``ms`` in every
row) lets it read them without ``--unit``. A model set's tables add ``model_sha256`` and ``input_shapes`` (inputs in
the model's order, as result files write them) after ``arch_index``, which is only the member's position there.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import math
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from latbench.datasets.cards import describe, markdown
from latbench.datasets.errors import DatasetError
from latbench.datasets.model import Dataset
from latbench.datasets.tables import LATENCY_COLUMNS, NOT_DEVICES, parquet_module
from latbench.spaces import get_space

FORMATS = ("csv", "parquet", "help")
COLUMNS = ("arch", "arch_index", "device", "latency_ms")
MODEL_COLUMNS = ("model_sha256", "input_shapes")
"""What a model set's tables add after ``arch_index``: each member's content and the shapes it was timed at."""
LAYOUTS = {
    "csv": "one row per measured (device, architecture): arch, arch_index, device, latency_ms (ms)",
    "parquet": "one row per measured (device, architecture): arch, arch_index (int64), device, latency_ms (float64)",
    "help": "latency/<device>.npy: a float64 vector of milliseconds per device (NaN = not measured); line i of "
    "archs.txt is the architecture of element i. NB201: all 15625 cells in official NAS-Bench-201 index order; "
    "other spaces: the dataset's architecture order",
}
WIDE_LAYOUTS = {
    "csv": "one row per architecture measured by any device: arch, arch_index, unit (ms), then one column per device "
    "named after it (ms; empty = not measured)",
    "parquet": "one row per architecture measured by any device: arch, arch_index (int64), unit (ms), then one "
    "column per device named after it (float64 ms; null = not measured)",
}
WIDE_RESERVED = frozenset({"arch", "device", *LATENCY_COLUMNS, *NOT_DEVICES})
"""Device names a wide table cannot hold: ``import`` would not read their columns as devices."""
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


def _model_cells(ds: Dataset) -> dict[str, tuple[str, str]]:
    """Each member's ``MODEL_COLUMNS`` cells by name; empty for a dataset of architectures."""
    return {a: (k.sha256, k.input_shapes) for a, k in zip(ds.archs, ds.models)} if ds.models is not None else {}


def _header(ds: Dataset, columns: tuple[str, ...]) -> list[str]:
    """``columns`` with ``MODEL_COLUMNS`` after ``arch_index`` for a model set."""
    return [*columns[:2], *(MODEL_COLUMNS if ds.models is not None else ()), *columns[2:]]


def _csv_bytes(ds: Dataset, gz: bool) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(_header(ds, COLUMNS))
    cells = _model_cells(ds)
    writer.writerows(
        (arch, index, *cells.get(arch, ()), device, str(value)) for arch, index, device, value in ds.long_rows()
    )
    data = text.getvalue().encode()
    return gzip.compress(data, compresslevel=6, mtime=0) if gz else data


def _wide_csv_bytes(ds: Dataset, gz: bool) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow([*_header(ds, ("arch", "arch_index", "unit")), *ds.device_names])
    archs, indices, latency = _wide_columns(ds)
    cells = _model_cells(ds)
    for arch, index, values in zip(archs, indices, latency.T.tolist()):
        writer.writerow([arch, index, *cells.get(arch, ()), "ms", *("" if math.isnan(v) else str(v) for v in values)])
    data = text.getvalue().encode()
    return gzip.compress(data, compresslevel=6, mtime=0) if gz else data


def _wide_parquet_bytes(ds: Dataset) -> bytes:
    parquet = parquet_module()
    import pyarrow as pa

    archs, indices, latency = _wide_columns(ds)
    columns = {
        "arch": pa.array(archs, pa.string()),
        "arch_index": pa.array(indices, pa.int64()),
        **_model_arrays(ds, archs),
        "unit": pa.array(["ms"] * len(archs), pa.string()),
    }
    for device, values in zip(ds.device_names, latency):
        columns[device] = pa.array(values, pa.float64(), mask=np.isnan(values))
    sink = io.BytesIO()
    parquet.write_table(pa.table(columns), sink)
    return sink.getvalue()


def _wide_columns(ds: Dataset) -> tuple[list[str], list[int], np.ndarray]:
    """The architectures any device measured, by ``arch_index``: names, indices and (devices x archs) values."""
    clash = sorted(WIDE_RESERVED.intersection(ds.device_names))
    if clash:
        raise DatasetError(
            f"device(s) {', '.join(map(repr, clash))} cannot be columns of a wide table (import would not read them "
            "as devices); export them as a long table"
        )
    indices = ds.arch_indices()
    order = np.argsort(indices, kind="stable")
    order = order[~np.isnan(ds.latency[:, order]).all(axis=0)]
    return [ds.archs[a] for a in order], indices[order].tolist(), ds.latency[:, order]


def _model_arrays(ds: Dataset, archs: list[str]) -> dict[str, Any]:
    """The ``MODEL_COLUMNS`` of the rows of ``archs`` as parquet string columns; none for architectures."""
    import pyarrow as pa

    cells = _model_cells(ds)
    if not cells:
        return {}
    return {name: pa.array([cells[a][i] for a in archs], pa.string()) for i, name in enumerate(MODEL_COLUMNS)}


def _parquet_bytes(ds: Dataset) -> bytes:
    parquet = parquet_module()
    import pyarrow as pa

    rows = list(ds.long_rows())
    table = pa.table(
        {
            "arch": pa.array([r[0] for r in rows], pa.string()),
            "arch_index": pa.array([r[1] for r in rows], pa.int64()),
            **_model_arrays(ds, [r[0] for r in rows]),
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


def _card_files(ds: Dataset, fmt: str, hashes: dict[str, str], layout: str) -> dict[str, bytes]:
    card: dict[str, Any] = describe(ds) | {"export": {"format": fmt, "layout": layout, "files": hashes}}
    return {
        "card.json": (json.dumps(card, indent=1, allow_nan=False) + "\n").encode(),
        "card.md": markdown(card).encode(),
    }


def export(ds: Dataset, fmt: str, out: str | Path, *, wide: bool = False) -> Path:
    """Write ``ds`` as ``fmt`` to ``out`` with its card; return ``out``.

    ``csv`` (``.csv`` or deterministic ``.csv.gz``) and ``parquet`` write ``out`` plus ``<stem>.card.json`` and
    ``<stem>.card.md`` beside it, each replaced atomically; long tables, or wide ones with ``wide``. ``help``
    writes the directory ``out`` (which must not exist yet) in one rename.
    """
    out = Path(out)
    if fmt not in FORMATS:
        raise DatasetError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if fmt == "help":
        if wide:
            raise DatasetError("--wide is for the csv and parquet formats; help writes one vector per device")
        return _export_help(ds, out)
    stem = _stem(out, fmt)
    gz = out.name.endswith(".gz")
    if wide:
        data = _wide_parquet_bytes(ds) if fmt == "parquet" else _wide_csv_bytes(ds, gz)
    else:
        data = _parquet_bytes(ds) if fmt == "parquet" else _csv_bytes(ds, gz)
    if not out.parent.is_dir():
        raise DatasetError(f"cannot write {out}: directory {out.parent} does not exist")
    _replace(data, out)
    layout = (WIDE_LAYOUTS if wide else LAYOUTS)[fmt]
    for name, card in _card_files(ds, fmt, {out.name: hashlib.sha256(data).hexdigest()}, layout).items():
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
        for name, data in _card_files(ds, "help", hashes, LAYOUTS["help"]).items():
            (tmp / name).write_bytes(data)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out
