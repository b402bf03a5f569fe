"""A results file that is appended to as measurements finish, so an interrupted run loses nothing and resumes.

CSV rows are appended and flushed one at a time (a torn last line from a crash is dropped on the next open);
parquet files are rewritten atomically after every row. Per-run times are kept: a list column in parquet, a
JSON array in CSV. A row's per-operator profile, given inline, is written beside the file
(``latbench.profiles``) and the row names it. A file written by an older latbench, whose columns are a subset of
this one's, is rewritten with the new columns (empty in its old rows) when a row is appended to it.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from latbench import profiles
from latbench.csvcells import inert, restored
from latbench.errors import MissingDependency, ResultsFileError
from latbench.results_schema import DTYPES

SUFFIXES = (".csv", ".parquet")
LATER_SETTINGS = ("cfg_pin_core", "cfg_reference", "cfg_wait_idle")
"""Settings recorded only by newer rows: a row without ``cfg_reference`` is older and records none of them."""
CSV_FIELD_LIMIT = 1 << 30
"""The largest CSV cell read: ``times_ms`` of a model timed for 30 s at 10 us a run is about 30 MB (the csv
module's default limit, 128 KiB, is reached by a 0.01 ms model timed for half a second)."""


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise MissingDependency("pyarrow", "parquet", "writing parquet results") from None
    return pyarrow


def _decode(column: str, text: str) -> object:
    """A CSV cell as its column's type; a column the schema does not know is text (versions like ``1.20`` must
    not become numbers)."""
    if text == "":
        return None
    dtype = DTYPES.get(column, "str")
    if dtype == "bool":
        return text.lower() in ("true", "1")
    if dtype == "list":
        return json.loads(text)
    if dtype == "int":
        return int(text)
    if dtype == "float":
        return float(text)
    return restored(text)


def _encode(value: object) -> object:
    """A value as its CSV cell: lists as JSON, text made inert for spreadsheets (``latbench.csvcells``)."""
    if isinstance(value, list):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, str):
        return inert(value)
    return "" if value is None else value


class ResultsFile:
    """Rows of measurements in a CSV or parquet file, read once and appended to."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.suffix not in SUFFIXES:
            raise ResultsFileError(f"results file {self.path} must end in .csv or .parquet")
        if self.path.suffix == ".parquet":
            _pyarrow()
        self.rows: list[dict[str, object]] = self._read() if self.path.exists() else []

    def _read(self) -> list[dict[str, object]]:
        try:
            if self.path.suffix == ".parquet":
                return _pyarrow().parquet.read_table(self.path).to_pylist()
            self._drop_torn_line()
            csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
            with self.path.open(newline="") as f:
                return [{k: _decode(k, v or "") for k, v in row.items()} for row in csv.DictReader(f)]
        except (OSError, ValueError, csv.Error) as exc:
            raise ResultsFileError(f"cannot read results file {self.path}: {exc}") from exc
        except Exception as exc:  # pyarrow raises its own error types for damaged files
            raise ResultsFileError(f"cannot read results file {self.path}: {exc}") from exc

    def _drop_torn_line(self) -> None:
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with self.path.open("r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)

    def done(self) -> set[str]:
        return {str(r["arch"]) for r in self.rows}

    def check_compatible(self, identity: dict[str, object]) -> None:
        """Refuse to mix rows measured under other settings into this file: the ``identity`` columns and every
        ``cfg_*`` setting a row records (``recorded_settings``, the rule ``dataset build`` checks too), so a row
        is never reused for a run with other settings."""
        for row in self.rows:
            recorded = recorded_settings(row)
            compared = {k: v for k, v in identity.items() if not k.startswith("cfg_") or k in recorded}
            diff = {k: (row.get(k), v) for k, v in compared.items() if _cell(row.get(k)) != _cell(v)}
            if diff:
                detail = ", ".join(f"{k}: file has {old!r}, this run {new!r}" for k, (old, new) in diff.items())
                raise ResultsFileError(
                    f"{self.path} holds results measured with other settings ({detail}); "
                    "use another --out, or the same settings to resume"
                )

    def append(self, row: dict[str, object]) -> None:
        """Add ``row`` (its inline profile written beside the file, ``row`` then naming it) and save it."""
        _externalise_profile(self.path, row)
        self.rows.append(row)
        if self.path.suffix == ".parquet":
            self._rewrite_parquet()
        else:
            self._append_csv(row)

    def _append_csv(self, row: dict[str, object]) -> None:
        new = not self.path.exists() or self.path.stat().st_size == 0
        if not new:
            with self.path.open(newline="") as f:
                header = next(csv.reader(f), [])
            if header != list(row):
                if not set(header) < set(row):
                    raise ResultsFileError(f"{self.path} has other columns than this version of latbench writes")
                self.rows = [{k: r.get(k) for k in row} for r in self.rows]
                write_results(self.path, self.rows)
                return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(list(row))
            writer.writerow([_encode(v) for v in row.values()])
            f.flush()
            os.fsync(f.fileno())

    def _rewrite_parquet(self) -> None:
        pa = _pyarrow()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        last = list(self.rows[-1])
        if any(list(r) != last for r in self.rows):  # rows of an older latbench lack the newer columns
            self.rows = [{k: r.get(k) for k in last} for r in self.rows]
        pa.parquet.write_table(pa.Table.from_pylist(self.rows), tmp)
        os.replace(tmp, self.path)


def _cell(value: object) -> object:
    """A value as a CSV cell reads back: an empty text is no value."""
    return None if value == "" else value


def recorded_settings(row: Mapping[str, object]) -> dict[str, object]:
    """The ``cfg_*`` settings ``row`` records: a column missing from an older file's row is left out, and so are
    ``LATER_SETTINGS`` where the row predates them, so older results stay usable."""
    settings = {k: v for k, v in row.items() if k.startswith("cfg_")}
    if settings.get("cfg_reference") is None:
        settings = {k: v for k, v in settings.items() if k not in LATER_SETTINGS}
    return settings


def read_results(path: str | Path) -> list[dict[str, object]]:
    """The rows of a results file written by ``latbench measure``."""
    path = Path(path)
    if not path.exists():
        raise ResultsFileError(f"results file {path} does not exist")
    return ResultsFile(path).rows


def write_results(path: str | Path, rows: list[dict[str, object]]) -> None:
    """Write ``rows`` to a new CSV or parquet file in one go, replacing ``path`` atomically."""
    path = Path(path)
    if path.suffix not in SUFFIXES:
        raise ResultsFileError(f"results file {path} must end in .csv or .parquet")
    for row in rows:
        _externalise_profile(path, row)
    header: dict[str, None] = {}
    for row in rows:
        header.update(dict.fromkeys(row))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if path.suffix == ".parquet":
        pa = _pyarrow()
        pa.parquet.write_table(pa.Table.from_pylist(rows), tmp)
    else:
        with tmp.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(list(header))
            writer.writerows([_encode(row.get(column)) for column in header] for row in rows)
    os.replace(tmp, path)


def _externalise_profile(path: Path, row: dict[str, object]) -> None:
    """Write a profile given inline (from a measurement or a collector's export) beside ``path``; the row keeps
    its file name."""
    value = row.get("profile")
    if isinstance(value, dict):
        row["profile"] = profiles.save(path, value)
