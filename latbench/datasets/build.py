"""Build a dataset from measurements: a ``latbench measure`` results file, an exported campaign, or a collector.

Repeated measurements of one (device, architecture) become the median of their medians, and the spread between
them is kept as a quality figure; so do an architecture's results from several campaigns built into one dataset.
Each device's results must share one measurement setup (space, runtime and its version, provider, precision, batch,
threads, resolution, classes, opset, hardware fingerprint and every ``cfg_*`` setting the results record, the rule
``latbench measure --out`` resumes by): a mix is refused with the difference, never averaged. A model set's results
are one member when they time the same file content at the same input shapes (``ModelKey``), whatever the file was
called; a file's batch and opset are its own, so they go with its member and never split a device's setup.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from latbench.datasets.errors import InvalidTable
from latbench.datasets.model import (
    Dataset,
    DeviceMeta,
    ModelKey,
    file_name,
    model_labels,
    new_provenance,
    ordered_archs,
)
from latbench.datasets.tables import default_name
from latbench.errors import InvalidArchitecture, LatbenchError
from latbench.hashing import sha256_file
from latbench.resultfile import read_results, recorded_settings
from latbench.spaces import MODEL_SET, get_space
from latbench.stability import is_unstable, summary

Row = Mapping[str, Any]
SETUP = (
    "space",
    "runtime",
    "runtime_version",
    "provider",
    "precision",
    "batch",
    "threads",
    "resolution",
    "classes",
    "opset",
    "device_id",
)
"""Columns that must agree between all results of one device (with every ``cfg_*`` column)."""
PER_MODEL = ("batch", "opset")
"""Setup columns that a model set's results take from each file, not from the device."""
STATIC_ENV = (
    "cpu_model",
    "machine",
    "cores_physical",
    "cores_logical",
    "memory_gb",
    "os",
    "python",
    "hostname",
    "numpy",
    "governor",
)
DRIFTING_ENV = ("load_1m", "cpu_freq_mhz", "temperature_c")


def _setup(row: Row) -> dict[str, Any]:
    columns = [k for k in SETUP if not (row.get("space") == MODEL_SET and k in PER_MODEL)]
    return {k: row.get(k) for k in columns} | dict(sorted(recorded_settings(row).items()))


def _results(n: int) -> str:
    return f"{n} result" if n == 1 else f"{n} results"


def _device_key(row: Row) -> str:
    return str(row.get("device") or row.get("env_hostname") or row.get("device_id") or "")


def _check_one_setup(device: str, rows: list[Row]) -> dict[str, Any]:
    setups = [_setup(r) for r in rows]
    keys = dict.fromkeys(k for s in setups for k in s)
    differing = {}
    for key in keys:
        counts = Counter(repr(s[key]) for s in setups if key in s)
        if len(counts) > 1:
            differing[key] = " vs ".join(f"{v} ({_results(n)})" for v, n in counts.items())
    if differing:
        detail = "; ".join(f"{k}: {v}" for k, v in differing.items())
        campaigns = list(dict.fromkeys(str(r["campaign"]) for r in rows if r.get("campaign")))
        if len(campaigns) > 1:
            raise InvalidTable(
                f"campaigns {', '.join(campaigns)} measured device {device!r} with different setups ({detail}), "
                "and a device's column holds one setup; build each campaign into its own dataset (--prefix tells "
                "the devices apart) and combine them"
            )
        raise InvalidTable(
            f"the results of device {device!r} were measured with different setups ({detail}); build "
            "each setup into its own dataset"
        )
    return {k: v for s in setups for k, v in s.items()}


def _environment(rows: list[Row]) -> dict[str, Any]:
    env: dict[str, Any] = {}
    for key in STATIC_ENV:
        values = sorted({str(r[f"env_{key}"]) for r in rows if r.get(f"env_{key}") is not None})
        if values:
            env[key] = values[0] if len(values) == 1 else values
    for key in DRIFTING_ENV:
        readings = [
            float(r[f"env_{key}_{when}"])
            for r in rows
            for when in ("before", "after")
            if r.get(f"env_{key}_{when}") is not None
        ]
        if readings:
            env[f"{key}_range"] = [min(readings), max(readings)]
    stamps = sorted(str(r["measured_at"]) for r in rows if r.get("measured_at"))
    if stamps:
        env["measured_at_range"] = [stamps[0], stamps[-1]]
    agents = sorted({str(r["agent"]) for r in rows if r.get("agent")})
    if agents:
        env["agents"] = agents
    return env


def _quality(rows: list[Row], by_arch: dict[int, list[float]]) -> dict[str, Any]:
    cvs = [float(r["cv"]) for r in rows if r.get("cv") is not None]
    spreads = [(max(v) - min(v)) / float(np.median(v)) for v in by_arch.values() if len(v) > 1]
    return {
        "results": len(rows),
        "repeated": len(spreads),
        "median_cv": round(float(np.median(cvs)), 6) if cvs else None,
        "max_cv": round(max(cvs), 6) if cvs else None,
        "unstable": sum(1 for r in rows if is_unstable(r)),
        "max_repeat_spread": round(max(spreads), 6) if spreads else None,
    }


DETAILS = (("load_ms", "median_load_ms", np.median), ("first_run_ms", "median_first_run_ms", np.median),
           ("peak_rss_mb", "max_peak_rss_mb", np.max))  # fmt: skip
"""Result columns a device's quality summarises, where its results have them (results from before them do not)."""


def _details(rows: list[Row]) -> dict[str, Any]:
    """The load time, first-run time and peak memory of a device's results, summarised."""
    found = {}
    for column, key, reduce in DETAILS:
        values = [float(r[column]) for r in rows if isinstance(r.get(column), int | float)]
        if values:
            found[key] = round(float(reduce(values)), 3)
    return found


def _stability(rows: list[Row], used: list[Row]) -> dict[str, Any]:
    """How many of a device's results were unstable, why, and how many the dataset left out."""
    text = summary(rows)
    return {"unstable_left_out": len(rows) - len(used)} | ({"stability": text} if text else {})


def _validated(rows: Iterable[Row]) -> tuple[str, list[tuple[str, Row]]]:
    """The space and each row with its canonical architecture; one bad row fails the whole build."""
    checked: list[tuple[str, Row]] = []
    space = None
    for i, row in enumerate(rows, start=1):
        if not row.get("space"):
            raise InvalidTable(f"result {i} has no 'space': is this a results file of latbench measure?")
        if space is None:
            space = get_space(str(row.get("space"))).name
        elif row.get("space") != space:
            raise InvalidTable(f"result {i} is of space {row.get('space')!r}, earlier ones of {space!r}")
        latency = row.get("latency_ms")
        if not isinstance(latency, int | float) or not math.isfinite(latency) or latency <= 0:
            raise InvalidTable(f"result {i} ({row.get('arch')!r}) has no valid latency_ms: {latency!r}")
        try:
            arch = get_space(space).canonical(str(row.get("arch")))
        except InvalidArchitecture as exc:
            raise InvalidTable(f"result {i}: {exc}") from None
        checked.append((arch, row))
    if space is None:
        raise InvalidTable("there are no results to build a dataset from")
    return space, checked


def _members(
    space: str, checked: list[tuple[str, Row]]
) -> tuple[tuple[str, ...], tuple[ModelKey, ...] | None, list[int]]:
    """The dataset's members and the column of each checked row: architectures by canonical string; models by
    content and input shapes, named after their files (disambiguated where two members share a file name)."""
    if space != MODEL_SET:
        archs = ordered_archs(space, [arch for arch, _ in checked])
        position = {a: i for i, a in enumerate(archs)}
        return archs, None, [position[arch] for arch, _ in checked]
    keys = []
    names: dict[ModelKey, str] = {}
    for i, (arch, row) in enumerate(checked, start=1):
        try:
            key = ModelKey.of(row.get("artifact_sha256"), row.get("input_shapes"))
        except LatbenchError as exc:
            raise InvalidTable(f"result {i} ({arch!r}): {exc}; model results are matched by their content") from None
        names.setdefault(key, file_name(arch, key.sha256))
        keys.append(key)
    labels = model_labels(names)
    column = {key: i for i, key in enumerate(names)}
    return tuple(labels[k] for k in names), tuple(names), [column[k] for k in keys]


def build_from_rows(
    rows: Iterable[Row],
    *,
    name: str,
    provenance: dict[str, Any],
    source: str,
    device: str | None = None,
    prefix: str = "",
    license: str = "",
    include_unstable: bool = False,
) -> Dataset:
    """A dataset from result rows (``latbench measure`` columns, optionally with ``device`` and ``agent``).

    A row's device is its ``device`` column (collector exports), else its ``env_hostname``; ``device`` renames
    the one device of single-device results, and ``prefix`` is prepended to every name. Results the stability
    checks gave up on are left out unless ``include_unstable``; each device's quality says how many and why.
    """
    space, checked = _validated(rows)
    grouped: dict[str, list[tuple[str, Row]]] = {}
    for arch, row in checked:
        grouped.setdefault(_device_key(row), []).append((arch, row))
    every = {key: [row for _, row in pairs] for key, pairs in grouped.items()}
    if not include_unstable:
        grouped = {key: [(a, r) for a, r in pairs if not is_unstable(r)] for key, pairs in grouped.items()}
        for key, pairs in grouped.items():
            if not pairs:
                raise InvalidTable(
                    f"device {key!r}: {summary(every[key])} To build from them anyway, use --include-unstable."
                )
    if device is not None:
        if len(grouped) > 1:
            raise InvalidTable(
                f"the results hold {len(grouped)} devices ({', '.join(grouped)}); --device renames "
                "the device of single-device results only"
            )
        grouped = {device: next(iter(grouped.values()))}
        every = {device: next(iter(every.values()))}
    archs, models, columns = _members(space, [pair for pairs in grouped.values() for pair in pairs])
    next_column = iter(columns)
    latency = np.full((len(grouped), len(archs)), np.nan, dtype=np.float64)
    metas = []
    for d, (key, pairs) in enumerate(grouped.items()):
        device_rows = [row for _, row in pairs]
        setup = _check_one_setup(key, device_rows)
        by_arch: dict[int, list[float]] = {}
        for row in device_rows:
            by_arch.setdefault(next(next_column), []).append(float(row["latency_ms"]))
        for position, values in by_arch.items():
            latency[d, position] = np.median(values)
        metas.append(
            DeviceMeta(
                name=f"{prefix}{key}",
                source=source,
                license=license,
                runtime=setup["runtime"],
                runtime_version=setup["runtime_version"],
                provider=setup["provider"],
                batch=setup.get("batch"),
                threads=setup["threads"],
                resolution=setup["resolution"],
                classes=setup["classes"],
                settings={k: setup[k] for k in ("opset", "device_id") if k in setup}
                | ({"precision": setup["precision"]} if setup["precision"] else {})
                | {k.removeprefix("cfg_"): v for k, v in setup.items() if k.startswith("cfg_")},
                environment=_environment(device_rows),
                quality=_quality(every[key], by_arch) | _details(device_rows) | _stability(every[key], device_rows),
            )
        )
    return Dataset(
        name=name,
        space=space,
        archs=archs,
        latency=latency,
        devices=tuple(metas),
        provenance=provenance,
        models=models,
    )


def build_from_results(
    path: str | Path,
    *,
    name: str | None = None,
    device: str | None = None,
    prefix: str = "",
    license: str = "",
    include_unstable: bool = False,
) -> Dataset:
    """A dataset from a results file of ``latbench measure`` or ``latbench results export``."""
    path = Path(path)
    try:
        rows = read_results(path)
    except LatbenchError as exc:
        raise InvalidTable(str(exc)) from None
    provenance = new_provenance("build", results_file=path.name, sha256=sha256_file(path), results=len(rows))
    return build_from_rows(
        rows,
        name=name or default_name(path),
        provenance=provenance,
        source=f"measured with latbench ({path.name})",
        device=device,
        prefix=prefix,
        license=license,
        include_unstable=include_unstable,
    )


def build_from_campaign(
    campaign_ids: str | Sequence[str],
    *,
    collector: str | None = None,
    token: str | None = None,
    name: str | None = None,
    device: str | None = None,
    prefix: str = "",
    license: str = "",
    include_unstable: bool = False,
) -> Dataset:
    """A dataset from the finished results of one or more collector campaigns (each device, one column).

    Several campaigns must be of one search space; a device measured by more than one must have been measured with
    one setup in all of them (a mix is refused, as within one campaign), and its results are pooled: an
    architecture measured in several keeps one value, the median of its (stable) results, as repeats do.
    """
    from latbench.client import CollectorClient

    ids = [campaign_ids] if isinstance(campaign_ids, str) else list(dict.fromkeys(campaign_ids))
    if not ids:
        raise InvalidTable("give at least one campaign to build from")
    rows: list[Row] = []
    parts = []
    with CollectorClient(collector, token) as client:
        statuses = [client.campaign(campaign_id) for campaign_id in ids]
        if len({status.space for status in statuses}) > 1:
            listing = ", ".join(f"{c} ({s.space})" for c, s in zip(ids, statuses))
            raise InvalidTable(f"cannot build one dataset from campaigns of different search spaces: {listing}")
        for campaign_id, status in zip(ids, statuses):
            found = [dict(row, campaign=campaign_id) for row in client.iter_results(campaign_id)]
            if not found:
                raise InvalidTable(f"campaign {campaign_id} has no finished results yet (state: {status.state})")
            rows += found
            parts.append(
                {
                    "campaign": campaign_id,
                    "campaign_name": status.name,
                    "campaign_state": status.state,
                    "results": len(found),
                }
            )
        url = client.url
    if len(parts) == 1:
        provenance = new_provenance("build", collector=url, **parts[0])
    else:
        provenance = new_provenance("build", collector=url, campaigns=parts, results=len(rows))
    return build_from_campaign_rows(
        rows,
        ids,
        provenance,
        name=name,
        device=device,
        prefix=prefix,
        license=license,
        include_unstable=include_unstable,
    )


def build_from_campaign_rows(
    rows: Iterable[Row],
    campaign_ids: str | Sequence[str],
    provenance: dict[str, Any],
    *,
    name: str | None = None,
    device: str | None = None,
    prefix: str = "",
    license: str = "",
    include_unstable: bool = False,
) -> Dataset:
    """A dataset from the result rows of one or more campaigns, named and sourced alike wherever it is built
    (``latbench dataset build --campaign``, the dashboard's card)."""
    ids = [campaign_ids] if isinstance(campaign_ids, str) else list(campaign_ids)
    default = f"campaign-{ids[0]}" if len(ids) == 1 else "campaigns-" + "-".join(c[:8] for c in ids)
    return build_from_rows(
        rows,
        name=name or default_name(Path(default)),
        provenance=provenance,
        source=f"measured with latbench (campaign {ids[0]})"
        if len(ids) == 1
        else f"measured with latbench (campaigns {', '.join(ids)})",
        device=device,
        prefix=prefix,
        license=license,
        include_unstable=include_unstable,
    )
