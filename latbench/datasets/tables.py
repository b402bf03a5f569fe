"""Import a latency table: CSV (optionally gzipped) or parquet, long or wide.

A long table has an architecture, a device and a latency column (one row per device and architecture); a wide
table has an architecture column and one latency column per device (one row per architecture, the shape of most
public exports). Every problem is found before anything is stored, and each error names the first offending rows
(and, in a wide table, columns): missing columns, invalid architecture strings, missing, non-positive or
non-finite latencies, an unknown or mixed unit, an NB201 ``arch_index`` that disagrees with the official index,
duplicates (long tables: with conflicting values; identical ones are merged and counted in the provenance).
"""

from __future__ import annotations

import csv
import gzip
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from latbench.datasets.errors import InvalidTable
from latbench.datasets.model import DEVICE_NAME, Dataset, DeviceMeta, new_provenance, official_indices, ordered_archs
from latbench.errors import InvalidArchitecture, MissingDependency
from latbench.hashing import sha256_file
from latbench.spaces import MODEL_SET, get_space

UNITS = {"ms": 1.0, "s": 1000.0, "us": 0.001}
"""Factors to milliseconds, the unit every dataset stores."""
LATENCY_COLUMNS = ("latency_ms", "latency_s", "latency_us", "latency")
NOT_DEVICES = ("arch_index", "unit", "index", "", "model_sha256", "input_shapes")
"""Columns of a wide table besides the architecture that are no device: ``index`` and ``''`` hold row numbers
(pandas writes its index under one of these names) and are ignored."""
MAX_LISTED = 5


@dataclass(frozen=True)
class Table:
    """A file's columns as lists of cells, with how to name a row in messages (CSV line or parquet row)."""

    path: Path
    columns: dict[str, list[Any]]
    n_rows: int
    first_line: int
    row_word: str

    def where(self, row: int) -> str:
        return f"{self.row_word} {row + self.first_line}"

    def column(self, name: str, flag: str) -> list[Any]:
        if name not in self.columns:
            raise InvalidTable(
                f"{self.path} has no column {name!r} (its columns: {', '.join(self.columns)}); "
                f"name the right one with {flag}"
            )
        return self.columns[name]


def parquet_module() -> Any:
    """``pyarrow.parquet``, or a ``MissingDependency`` that says which extra installs it."""
    try:
        import pyarrow.parquet
    except ImportError:
        raise MissingDependency("pyarrow", "parquet", "reading and writing parquet tables") from None
    return pyarrow.parquet


def _unique_header(path: Path, header: Sequence[str]) -> None:
    if len(set(header)) != len(header):
        raise InvalidTable(f"{path} repeats a column name in its header: {', '.join(header)}")


def read_table(path: Path) -> Table:
    name = path.name.lower()
    try:
        if name.endswith(".parquet"):
            table = parquet_module().read_table(path)
            _unique_header(path, table.column_names)
            columns = {c: table.column(c).to_pylist() for c in table.column_names}
            return Table(path, columns, table.num_rows, first_line=1, row_word="row")
        if name.endswith((".csv", ".csv.gz")):
            opener: Callable[..., Any] = gzip.open if name.endswith(".gz") else open
            with opener(path, "rt", newline="", encoding="utf-8") as f:
                reader = csv.reader(f)
                header = next(reader, None)
                rows = list(reader)
        else:
            raise InvalidTable(f"{path}: import reads .csv, .csv.gz and .parquet tables (and the HW-NAS-Bench .pickle)")
    except InvalidTable:
        raise
    except Exception as exc:  # csv, gzip, unicode and pyarrow errors all mean the same: not a readable table
        raise InvalidTable(f"cannot read {path}: {exc}") from exc
    if not header:
        raise InvalidTable(f"{path} is empty: expected a header line and rows")
    _unique_header(path, header)
    ragged = [i for i, row in enumerate(rows) if len(row) != len(header)]
    if ragged:
        raise InvalidTable(
            f"{path}: line {ragged[0] + 2} has {len(rows[ragged[0]])} field(s), the header {len(header)}"
        )
    cells = list(zip(*rows)) if rows else [()] * len(header)
    return Table(path, {h: list(c) for h, c in zip(header, cells)}, len(rows), first_line=2, row_word="line")


def _listing(table: Table, rows: Sequence[int], describe: Callable[[int], str]) -> str:
    return "; ".join(f"{table.where(r)}: {describe(r)}" for r in rows[:MAX_LISTED])


def _no_latency_column(table: Table, hint: str = "") -> InvalidTable:
    return InvalidTable(
        f"{table.path} has no latency column ({' or '.join(LATENCY_COLUMNS)}; its columns: "
        f"{', '.join(table.columns)}); name it with --latency-column{hint}"
    )


def _latency_column(table: Table, column: str | None, unit: str | None) -> tuple[str, str]:
    """The latency column and its unit, from the column's suffix, ``unit``, or a ``unit`` column."""
    if column is None:
        column = next((c for c in LATENCY_COLUMNS if c in table.columns), None)
        if column is None:
            raise _no_latency_column(table)
    table.column(column, "--latency-column")
    suffix = column.rsplit("_", 1)[-1] if "_" in column else None
    return column, _unit(table, f"column {column!r}", suffix if suffix in UNITS else None, unit)


def _unit(table: Table, subject: str, named: str | None, unit: str | None) -> str:
    """The one unit stated for ``subject`` by its column name (``named``), ``unit`` and a ``unit`` column."""
    if unit is not None and unit not in UNITS:
        raise InvalidTable(f"unknown unit {unit!r}; choose one of: {', '.join(UNITS)}")
    stated = {u for u in [named, unit] if u}
    if "unit" in table.columns:
        counts = Counter(str(value) for value in table.columns["unit"])
        if len(counts) > 1:
            listed = ", ".join(f"{u!r} ({n} rows)" for u, n in counts.items())
            raise InvalidTable(f"{table.path} mixes units in its 'unit' column: {listed}; convert them to one unit")
        stated |= set(counts)
    if len(stated) > 1:
        raise InvalidTable(
            f"{table.path}: the unit of {subject} is stated differently ({', '.join(sorted(stated))}: "
            "column name, --unit and 'unit' column must agree)"
        )
    if not stated:
        raise InvalidTable(f"cannot tell the unit of {subject} in {table.path}; pass --unit ms, s or us")
    found = stated.pop()
    if found not in UNITS:
        raise InvalidTable(f"{table.path}: unknown unit {found!r}; use one of: {', '.join(UNITS)}")
    return found


def _latencies(table: Table, column: str, unit: str) -> np.ndarray:
    cells = table.columns[column]
    values = np.full(table.n_rows, np.nan)
    unreadable: list[int] = []
    for i, cell in enumerate(cells):
        try:
            values[i] = float(cell)
        except (TypeError, ValueError):
            unreadable.append(i)
    bad = sorted(set(unreadable) | set(np.flatnonzero(~np.isfinite(values) | (values <= 0)).tolist()))
    if bad:
        raise InvalidTable(
            f"{len(bad)} row(s) of {table.path} have no valid latency (a positive finite number): "
            + _listing(table, bad, lambda r: repr(cells[r]))
        )
    return values * UNITS[unit]


def _canonical_archs(table: Table, space: str, cells: list[Any]) -> list[str]:
    s = get_space(space)
    canonical: dict[Any, str] = {}
    problems: dict[Any, str] = {}
    for cell in dict.fromkeys(cells):
        try:
            canonical[cell] = s.canonical(cell)
        except InvalidArchitecture as exc:
            problems[cell] = str(exc)
    if problems:
        bad = [i for i, cell in enumerate(cells) if cell in problems]
        hint = next(iter(problems.values())).split("; ", 1)[-1]
        detail = _listing(table, bad, lambda r: problems[cells[r]].split("; ", 1)[0])
        raise InvalidTable(f"{len(bad)} row(s) of {table.path} have invalid {space} architectures: {detail} ({hint})")
    return [canonical[cell] for cell in cells]


def _arch_order(table: Table, space: str, archs: list[str]) -> tuple[str, ...]:
    """Official index order where the space has one (checking any ``arch_index`` column); else ``arch_index``, else
    appearance."""
    if "arch_index" not in table.columns:
        return ordered_archs(space, archs)
    cells = table.columns["arch_index"]
    try:
        given = [int(c) for c in cells]
    except (TypeError, ValueError):
        bad = [i for i, c in enumerate(cells) if not str(c).lstrip("-").isdigit()]
        raise InvalidTable(
            f"{table.path}: 'arch_index' must hold integers; " + _listing(table, bad, lambda r: repr(cells[r]))
        ) from None
    index = official_indices(space)
    if index is not None:
        official = [index[a] for a in archs]
        bad = [i for i, (o, g) in enumerate(zip(official, given)) if o != g]
        if bad:
            raise InvalidTable(
                f"{len(bad)} row(s) of {table.path} have an arch_index that is not the official "
                f"{get_space(space).title} index of their arch: "
                + _listing(table, bad, lambda r: f"{given[r]} given, {official[r]} official")
            )
        return ordered_archs(space, archs)
    first: dict[str, int] = {}
    for arch, i in zip(archs, given):
        first[arch] = min(first.get(arch, i), i)
    return tuple(sorted(first, key=first.__getitem__))


def _devices(table: Table, column: str, device: str | None, prefix: str) -> list[str]:
    if device is not None:
        if column in table.columns:
            raise InvalidTable(
                f"{table.path} has a device column {column!r}; --device names the device of a file without one"
            )
        cells = [device] * table.n_rows
    elif column in table.columns:
        cells = table.columns[column]
    else:
        raise InvalidTable(
            f"{table.path} has no device column {column!r} (its columns: {', '.join(table.columns)}); "
            "name it with --device-column, or name the single device with --device"
        )
    names = [f"{prefix}{c}" for c in cells]
    invalid = {n for n in set(names) if not DEVICE_NAME.match(n)}
    bad = [i for i, n in enumerate(names) if n in invalid] if invalid else []
    if bad:
        raise InvalidTable(
            f"{len(bad)} row(s) of {table.path} have an invalid device name (letters, digits and "
            "'._@:+-', starting with a letter or digit): " + _listing(table, bad, lambda r: repr(names[r]))
        )
    return names


def _assemble(
    table: Table, archs: list[str], order: tuple[str, ...], devices: list[str], values: np.ndarray
) -> tuple[np.ndarray, list[str], int]:
    """The (devices x archs) matrix, the device order (first appearance) and the identical-duplicate count."""
    device_order = list(dict.fromkeys(devices))
    device_id = {d: i for i, d in enumerate(device_order)}
    arch_id = {a: i for i, a in enumerate(order)}
    rows = np.array([device_id[d] for d in devices], dtype=np.int64)
    cols = np.array([arch_id[a] for a in archs], dtype=np.int64)
    key = rows * len(order) + cols
    sort = np.argsort(key, kind="stable")
    same = key[sort][1:] == key[sort][:-1]
    conflict = np.flatnonzero(same & (values[sort][1:] != values[sort][:-1]))
    if len(conflict):
        pairs = [(int(sort[i]), int(sort[i + 1])) for i in conflict[:MAX_LISTED]]
        listed = "; ".join(
            f"{table.where(a)} and {table.where(b)} ({devices[a]}, {archs[a]}): {values[a]:g} vs {values[b]:g} ms"
            for a, b in pairs
        )
        raise InvalidTable(
            f"{len(conflict)} duplicate row(s) of {table.path} give one device and architecture "
            f"different latencies: {listed}"
        )
    latency = np.full((len(device_order), len(order)), np.nan, dtype=np.float64)
    latency[rows, cols] = values
    return latency, device_order, int(same.sum())


def _is_missing(cell: Any) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _is_number(cell: Any) -> bool:
    try:
        float(cell)
    except (TypeError, ValueError):
        return False
    return True


def _device_columns(table: Table, arch_column: str) -> list[str]:
    """The columns of a wide table that are devices: all but the architecture and ``NOT_DEVICES``."""
    return [c for c in table.columns if c != arch_column and c not in NOT_DEVICES]


def _why_not_wide(table: Table, arch_column: str, device_column: str) -> str | None:
    """None for a table to read as wide (an architecture column, no device column, every other column numbers
    or empty cells); else the reason, for the error of a table that is neither long nor wide."""
    if device_column in table.columns:
        return f"it has a device column {device_column!r}"
    if arch_column not in table.columns:
        return f"it has no architecture column {arch_column!r}"
    columns = _device_columns(table, arch_column)
    if not columns:
        return "it has no column besides the architecture"
    for column in columns:
        cells = table.columns[column]
        bad = next((i for i, c in enumerate(cells) if not _is_missing(c) and not _is_number(c)), None)
        if bad is not None:
            return f"{table.where(bad)}, column {column!r} is not a number: {cells[bad]!r}"
    return None


def _wide_latencies(table: Table, columns: list[str], unit: str, archs: list[Any]) -> np.ndarray:
    """The (rows x device columns) latencies in ms, NaN where a cell is empty (a device did not measure it)."""
    values = np.full((table.n_rows, len(columns)), np.nan)
    bad: list[tuple[int, str, Any]] = []
    for j, column in enumerate(columns):
        for i, cell in enumerate(table.columns[column]):
            if _is_missing(cell):
                continue
            value = float(cell) if _is_number(cell) else math.nan
            if not (math.isfinite(value) and value > 0):
                bad.append((i, column, cell))
            values[i, j] = value
    if bad:
        bad.sort(key=lambda b: b[0])
        listed = "; ".join(f"{table.where(i)}, column {c!r}: {cell!r}" for i, c, cell in bad[:MAX_LISTED])
        raise InvalidTable(
            f"{len(bad)} cell(s) of {table.path} are no valid latency (a positive finite number; leave a cell "
            f"empty where the device did not measure the architecture): {listed}"
        )
    empty = [c for j, c in enumerate(columns) if np.isnan(values[:, j]).all()]
    if empty:
        raise InvalidTable(
            f"{table.path}: device column(s) without a single latency: {', '.join(map(repr, empty))}; "
            "remove them or fill them in"
        )
    blank = np.flatnonzero(np.isnan(values).all(axis=1)).tolist()
    if blank:
        raise InvalidTable(
            f"{len(blank)} row(s) of {table.path} have no latency in any device column: "
            + _listing(table, blank, lambda r: repr(archs[r]))
        )
    return values * UNITS[unit]


def _wide_devices(table: Table, columns: list[str], prefix: str) -> list[str]:
    names = [f"{prefix}{c}" for c in columns]
    bad = [n for n in names if not DEVICE_NAME.match(n)]
    if bad:
        raise InvalidTable(
            f"{table.path}: {len(bad)} device column name(s) are no valid device name (letters, digits and "
            f"'._@:+-', starting with a letter or digit): {', '.join(map(repr, bad[:MAX_LISTED]))}"
        )
    return names


def _single_rows(table: Table, archs: list[str]) -> None:
    """Refuse a wide table that gives an architecture more than one row."""
    first: dict[str, int] = {}
    repeats: list[int] = []
    for i, arch in enumerate(archs):
        if first.setdefault(arch, i) != i:
            repeats.append(i)
    if repeats:
        raise InvalidTable(
            f"{len(repeats)} row(s) of {table.path} repeat an architecture (a wide table has one row per "
            "architecture): " + _listing(table, repeats, lambda r: f"{archs[r]} as on {table.where(first[archs[r]])}")
        )


def _import_wide(
    table: Table, space: str, arch_column: str, unit: str | None, prefix: str
) -> tuple[tuple[str, ...], np.ndarray, list[str], str]:
    """Architectures, the (devices x architectures) matrix, device names and unit of a wide table."""
    columns = _device_columns(table, arch_column)
    if not columns:
        raise InvalidTable(
            f"{table.path} has no device columns besides {arch_column!r} and {', '.join(map(repr, NOT_DEVICES))}"
        )
    cells = table.column(arch_column, "--arch-column")
    unit = _unit(table, "the device columns", None, unit)
    values = _wide_latencies(table, columns, unit, cells)
    devices = _wide_devices(table, columns, prefix)
    archs = _canonical_archs(table, space, cells)
    _single_rows(table, archs)
    order = _arch_order(table, space, archs)
    row = {a: i for i, a in enumerate(archs)}
    latency = np.ascontiguousarray(values[[row[a] for a in order]].T)
    return order, latency, devices, unit


def default_name(path: Path) -> str:
    """A registry name from a file name: ``My Table.csv.gz`` -> ``my-table``."""
    stem = re.sub(r"(\.csv\.gz|\.csv|\.parquet|\.pickle|\.pkl)$", "", path.name.lower())
    return re.sub(r"[^a-z0-9._-]+", "-", stem).strip("-._")[:64] or "dataset"


def import_table(
    path: str | Path,
    space: str,
    *,
    name: str | None = None,
    arch_column: str = "arch",
    device_column: str = "device",
    latency_column: str | None = None,
    device: str | None = None,
    unit: str | None = None,
    prefix: str = "",
    license: str = "",
    source: str | None = None,
    wide: bool = False,
) -> Dataset:
    """A dataset from a long or a wide table; not stored until ``save``.

    A long table has one row per device and architecture; the unit comes from the latency column's name
    (``latency_ms``, ``latency_s``, ``latency_us``), ``unit`` or a ``unit`` column, which must agree. A wide table
    has one row per architecture and one column per device (named after it; an empty cell: not measured), and its
    unit from ``unit`` or a ``unit`` column. A table is read as wide with ``wide``, or when it has no latency and
    no device column and every column but the architecture, ``arch_index`` and ``unit`` holds numbers. Values are
    stored in milliseconds. ``prefix`` is prepended to every device name, so devices of different origins can be
    combined without clashing.
    """
    path = Path(path)
    space = get_space(space).name
    if space == MODEL_SET:
        raise InvalidTable(
            "a table cannot say which model file each name stands for; build a dataset of model files from their "
            "results (latbench dataset build --from-results FILE or --campaign ID), which record each model's "
            "content hash and input shapes"
        )
    table = read_table(path)
    if table.n_rows == 0:
        raise InvalidTable(f"{path} has a header but no rows")
    if not wide and latency_column is None and device is None and not set(LATENCY_COLUMNS) & set(table.columns):
        why = _why_not_wide(table, arch_column, device_column)
        if why is not None:
            raise _no_latency_column(table, f", or pass --wide for a table with one column per device ({why})")
        wide = True
    if wide:
        if latency_column is not None or device is not None:
            raise InvalidTable(
                "--latency-column and --device are for long tables; a wide table has a column per device"
            )
        order, latency, device_order, unit = _import_wide(table, space, arch_column, unit, prefix)
        details: dict[str, Any] = {"layout": "wide", "unit": unit}
    else:
        column, unit = _latency_column(table, latency_column, unit)
        values = _latencies(table, column, unit)
        archs = _canonical_archs(table, space, table.column(arch_column, "--arch-column"))
        order = _arch_order(table, space, archs)
        devices = _devices(table, device_column, device, prefix)
        latency, device_order, duplicates = _assemble(table, archs, order, devices, values)
        details = {"identical_duplicates": duplicates, "unit": unit, "latency_column": column}
    origin = source or f"imported from {path.name}"
    metas = tuple(DeviceMeta(name=d, source=origin, license=license) for d in device_order)
    provenance = new_provenance("import", file=path.name, sha256=sha256_file(path), rows=table.n_rows, **details)
    return Dataset(
        name=name or default_name(path), space=space, archs=order, latency=latency, devices=metas, provenance=provenance
    )
