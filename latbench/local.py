"""Measure architectures, or users' own model files, on this machine: build or inspect them first, then time
them one by one.

This is what ``latbench measure`` runs. Every artifact is exported before the first timed run (export never
runs while timing), each result is appended to the results file as soon as it exists, and a re-run with the
same file skips what is already there. A model file that cannot be timed is refused on its own; the others
are still measured.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

import latbench
from latbench.agents.environment import MachineInfo
from latbench.agents.measure import Measurement, TimingSettings
from latbench.agents.modelfile import (
    FORMATS,
    InputData,
    ModelFile,
    check_input_names,
    format_shapes,
    parse_input_shapes,
    random_description,
)
from latbench.agents.quiet import QuietPolicy
from latbench.agents.runtimes import Runtime, get_runtime
from latbench.benches import Bench, CannotTime, Engine, LocalBench, RemoteBench, check_remote, one_line, optimization
from latbench.errors import LatbenchError, ModelInputError
from latbench.precision import DEFAULT as DEFAULT_PRECISION
from latbench.progress import Progress, notify
from latbench.resultfile import ResultsFile
from latbench.results_schema import RECORDED_SETTINGS, model_batch, result_row
from latbench.spaces import MODEL_SET, get_space

if TYPE_CHECKING:
    from latbench.agents.remote.runner import RemoteRunner


def select_archs(
    space: str, archs: Sequence[str] | None, samples: int | None, seed: int, connected_only: bool
) -> list[str]:
    """The canonical architectures a run measures: the given ones, or a seeded sample."""
    s = get_space(space)
    if archs and samples is not None:
        raise LatbenchError("give either architectures or a sample size, not both")
    if archs:
        return list(dict.fromkeys(s.canonical_many(archs)))
    if samples is None:
        raise LatbenchError("give architectures to measure or a sample size")
    if samples < 1:
        raise LatbenchError(f"the sample size must be at least 1, got {samples}")
    return s.sample(samples, seed, connected_only=connected_only)


def _row(
    arch: str,
    space: str,
    artifact_sha256: str,
    runtime: Engine,
    identity: dict[str, object],
    info: MachineInfo,
    settings: TimingSettings,
    m: Measurement,
    numpy_version: str | None = None,
) -> dict[str, object]:
    """An architecture's result row."""
    subject = {
        "arch": arch,
        "arch_index": get_space(space).official_index(arch),
        **{k: identity[k] for k in ("space", "batch", "resolution", "classes", "opset")},
        "input_shapes": None,
    }
    return _result_row(subject, artifact_sha256, runtime, identity, info, settings, m, numpy_version)


def _result_row(
    subject: Mapping[str, object],
    artifact_sha256: str,
    runtime: Engine,
    identity: dict[str, object],
    info: MachineInfo,
    settings: TimingSettings,
    m: Measurement,
    numpy_version: str | None = None,
) -> dict[str, object]:
    """A result row; ``subject`` holds what was measured: ``arch``, ``arch_index``, ``space``, ``batch``,
    ``resolution``, ``classes``, ``opset`` and ``input_shapes``. ``runtime`` is the engine that timed it, ``info``
    and ``numpy_version`` (default: this process's) describe the machine it ran on."""
    before, after = m.state_before, m.state_after
    assert before is not None and after is not None
    values = {
        **subject,
        "runtime": identity["runtime"],
        "runtime_version": runtime.version(),
        "provider": identity["provider"],
        "precision": identity.get("precision"),
        "threads": identity["threads"],
        "artifact_sha256": artifact_sha256,
        "latency_ms": m.stats.median_ms,
        "mean_ms": m.stats.mean_ms,
        "std_ms": m.stats.std_ms,
        "min_ms": m.stats.min_ms,
        "max_ms": m.stats.max_ms,
        "p90_ms": m.stats.p90_ms,
        "p99_ms": m.stats.p99_ms,
        "mad_ms": m.stats.mad_ms,
        "cv": m.stats.cv,
        "runs": m.stats.runs,
        "warmup_runs": m.warmup_runs,
        "attempts": m.attempts,
        "stable": m.stable,
        "flags": ",".join(m.flags),
        "attempt_flags": ";".join(",".join(f) or "ok" for f in m.attempt_flags),
        "ref_ratio": m.ref_ratio,
        "wall_s": m.wall_s,
        "load_ms": m.load_ms,
        "first_run_ms": m.first_run_ms,
        "peak_rss_mb": m.peak_rss_mb,
        "idle_waited_s": m.idle_waited_s,
        "idle_load": m.idle_load,
        "profile": m.profile.as_dict() if m.profile else None,
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device_id": identity["device_id"],
        "latbench_version": latbench.__version__,
        **{k: v for k, v in identity.items() if k.startswith("cfg_")},
        "cfg_optimization": optimization(runtime),
        **{f"env_{k}": v for k, v in info.snapshot().items()},
        "env_numpy": np.__version__ if numpy_version is None else numpy_version,
        "env_load_1m_before": before.load_1m,
        "env_load_1m_after": after.load_1m,
        "env_cpu_freq_mhz_before": before.cpu_freq_mhz,
        "env_cpu_freq_mhz_after": after.cpu_freq_mhz,
        "env_governor": before.governor,
        "env_temperature_c_before": before.temperature_c,
        "env_temperature_c_after": after.temperature_c,
        "env_memory_available_gb": before.memory_available_gb,
        "times_ms": [round(t / 1e6, 6) for t in m.times_ns.tolist()],
    }
    return result_row(values)


def measure(
    space: str | None = None,
    archs: Sequence[str] | None = None,
    *,
    models: Sequence[str | Path] | None = None,
    inputs: Mapping[str, Sequence[int]] | Sequence[str] | None = None,
    input_data: str | Path | None = None,
    samples: int | None = None,
    seed: int = 0,
    connected_only: bool = False,
    runtime: str = "onnxruntime",
    provider: str = "cpu",
    precision: str = DEFAULT_PRECISION,
    batch: int = 1,
    threads: int = 1,
    resolution: int | None = None,
    classes: int | None = None,
    settings: TimingSettings | None = None,
    out: str | Path | None = None,
    cache_dir: str | Path | None = None,
    reference: bool = True,
    progress: Progress | None = None,
    on_result: Callable[[dict[str, object]], None] | None = None,
    on_refused: Callable[[str, str], None] | None = None,
    quiet: QuietPolicy | None = None,
    remote: RemoteRunner | None = None,
) -> list[dict[str, object]]:
    """Measure ``archs`` (or ``samples`` seeded ones) of ``space``, or the model files ``models``, on this
    machine (or on the ``remote`` device); return one row each.

    ``models`` are ONNX files (onnxruntime, tvm) or ``.tflite`` files (tflite), timed as they are; ``inputs``
    (``{"input_ids": (1, 128)}`` or ``["input_ids:1x128"]``) give the shapes of their dynamic dimensions;
    ``input_data`` (an ``.npz`` of arrays by input name) gives their values instead of seeded random ones. A
    model that cannot be timed is refused through ``on_refused(path, line)`` (else a warning) and left out.
    ``precision`` (``fp32`` or ``int8``, see ``latbench.precision``) picks the artifact architectures are timed as;
    a model file is timed as it is, at its own precision.
    With ``out``, rows are appended as they finish and rows already in the file are kept and not measured
    again (the file must hold results of the same settings and device). ``reference`` times a fixed model
    between measurements to detect a drifting machine. ``quiet`` waits for other programs to calm down before
    each timing attempt. ``progress`` hears stages ``export`` and ``measure``; ``on_result`` gets each new row.
    ``remote`` (``latbench.agents.remote.open_runner(url, ...)``, which the caller closes) times each artifact on
    that device instead, built or checked here first; its rows describe the device (its machine, fingerprint,
    engine and numpy). No reference probe runs there (``reference`` is off: ``cfg_reference`` false), and
    profiling, ``quiet`` and ``input_data`` are refused before anything is built.
    """
    if remote is not None:
        check_remote(settings or TimingSettings(), quiet, input_data)
    if models is not None:
        if space is not None or archs or samples is not None:
            raise LatbenchError("give either a search space or model files, not both")
        if batch != 1 or resolution is not None or classes is not None:
            raise LatbenchError("batch, resolution and classes are a model file's own: give shapes with inputs")
        if precision != DEFAULT_PRECISION:
            raise LatbenchError("a model file is timed at its own precision: give precision for architectures only")
        return _measure_models(
            models,
            inputs,
            runtime,
            provider,
            threads,
            settings,
            out,
            cache_dir,
            reference,
            progress,
            on_result,
            on_refused,
            quiet,
            input_data,
            remote,
        )
    if space is None:
        raise LatbenchError("give a search space to sample architectures from, or model files")
    if input_data is not None:
        raise LatbenchError("input data is for model files; an architecture is timed on seeded random input")
    if inputs:
        raise LatbenchError("input shapes are for model files; an architecture's input is set by batch and resolution")
    return _measure_archs(
        space, archs, samples, seed, connected_only, runtime, provider, precision, batch, threads, resolution, classes,
        settings, out, cache_dir, reference, progress, on_result, quiet, remote,
    )  # fmt: skip


def _pinned_core() -> int | None:
    """The one core this process may run on (``--pin-core``, ``taskset``), where it is confined to one of several."""
    if not hasattr(os, "sched_getaffinity") or (os.cpu_count() or 1) < 2:
        return None
    cores = os.sched_getaffinity(0)
    return next(iter(cores)) if len(cores) == 1 else None


def _timing_columns(settings: TimingSettings) -> dict[str, object]:
    return {f"cfg_{name}": getattr(settings, name) for name, _ in RECORDED_SETTINGS}


def _run_settings(
    settings: TimingSettings, engine: Engine, reference: bool, quiet: QuietPolicy | None
) -> dict[str, object]:
    """The ``cfg_*`` columns of a run's rows on this machine: part of its identity, so a results file resumes only
    with them."""
    return {
        **_timing_columns(settings),
        "cfg_optimization": optimization(engine),
        "cfg_pin_core": _pinned_core(),
        "cfg_reference": reference,
        "cfg_wait_idle": quiet is not None,
    }


def _open_bench(
    runtime_cls: type[Runtime],
    threads: int,
    provider: str,
    settings: TimingSettings,
    reference: bool,
    quiet: QuietPolicy | None,
    remote: RemoteRunner | None,
) -> tuple[Bench, dict[str, object]]:
    """Where a run times its artifacts, and the ``cfg_*`` columns that gives its rows. A remote device is neither
    pinned, probed nor waited for from here, and its engine says its optimisation with its first result
    (``_keep``)."""
    if remote is not None:
        bench: Bench = RemoteBench(remote, runtime_cls, threads, provider, settings)
        return bench, {**_timing_columns(settings), "cfg_pin_core": None, "cfg_reference": False,
                       "cfg_wait_idle": False}  # fmt: skip
    local = LocalBench(runtime_cls, threads, provider, settings, reference, quiet)
    return local, _run_settings(settings, local.engine, reference, quiet)


def _results_file(out: str | Path | None, identity: dict[str, object]) -> ResultsFile | None:
    """The results file a run appends to, checked to hold results of the same settings and device."""
    if out is None:
        return None
    results = ResultsFile(out)
    results.check_compatible(identity)
    return results


def _keep(results: ResultsFile | None, identity: dict[str, object], row: dict[str, object]) -> None:
    """Append ``row`` to ``results``. A remote device's engine says its optimisation with its first row: part of
    the run's identity too, checked against the file before that row is written."""
    if results is None:
        return
    if "cfg_optimization" not in identity:
        identity["cfg_optimization"] = row["cfg_optimization"]
        results.check_compatible(identity)
    results.append(row)


def _measure_archs(
    space: str,
    archs: Sequence[str] | None,
    samples: int | None,
    seed: int,
    connected_only: bool,
    runtime: str,
    provider: str,
    precision: str,
    batch: int,
    threads: int,
    resolution: int | None,
    classes: int | None,
    settings: TimingSettings | None,
    out: str | Path | None,
    cache_dir: str | Path | None,
    reference: bool,
    progress: Progress | None,
    on_result: Callable[[dict[str, object]], None] | None,
    quiet: QuietPolicy | None,
    remote: RemoteRunner | None = None,
) -> list[dict[str, object]]:
    from latbench.artifacts import OPSET, ArtifactCache, ArtifactKey

    settings = settings or TimingSettings()
    s = get_space(space)
    if batch < 1:
        raise LatbenchError(f"batch must be at least 1, got {batch}")
    resolution = resolution or s.default_resolution
    s.validate_resolution(resolution)
    classes = classes or s.default_classes
    if classes < 1:
        raise LatbenchError(f"classes must be at least 1, got {classes}")
    wanted = select_archs(space, archs, samples, seed, connected_only)
    bench, run_settings = _open_bench(get_runtime(runtime), threads, provider, settings, reference, quiet, remote)
    fmt = bench.artifact_format(precision)
    identity: dict[str, object] = {
        "space": s.name,
        "runtime": runtime,
        "provider": provider,
        "precision": precision,
        "batch": batch,
        "threads": threads,
        "resolution": resolution,
        "classes": classes,
        "opset": OPSET,
        "device_id": bench.info.fingerprint(),
        **run_settings,
    }
    results = _results_file(out, identity)
    done = results.done() if results is not None else set()
    todo = [a for a in wanted if a not in done]

    cache = ArtifactCache(Path(cache_dir) if cache_dir else None)
    keys = [
        ArtifactKey(space=s.name, arch=a, batch=batch, resolution=resolution, classes=classes, opset=OPSET, seed=0)
        for a in todo
    ]
    artifacts = cache.build_many(keys, progress=progress, fmt=fmt)

    rows = [r for r in (results.rows if results else []) if r["arch"] in set(wanted)]
    measured = len(done & set(wanted))
    notify(progress, "measure", measured, len(wanted))
    try:
        if todo:
            bench.calibrate(cache, fmt)
        for arch, artifact in zip(todo, artifacts, strict=True):
            t = bench.time(artifact.path)
            row = _row(arch, s.name, artifact.sha256, t.engine, identity, bench.info, settings, t.measurement,
                       t.numpy_version)  # fmt: skip
            _keep(results, identity, row)
            rows.append(row)
            measured += 1
            notify(progress, "measure", measured, len(wanted))
            if on_result:
                on_result(row)
    finally:
        bench.close()
    order = {a: i for i, a in enumerate(wanted)}
    return sorted(rows, key=lambda r: order[str(r["arch"])])


Refused = Callable[[str, str], None] | None
"""Told of a model file that cannot be timed: its path and why, as one line. Without it, a warning."""


def _refuse(on_refused: Refused, path: str, reason: str) -> None:
    """Report a refused model as one line that names the file."""
    line = reason if path in reason or Path(path).name in reason else f"{path}: {reason}"
    if on_refused:
        on_refused(path, line)
    else:
        warnings.warn(line, stacklevel=3)


def _tell(progress: Progress | None, line: str, stacklevel: int) -> None:
    """A note on the models (not a refusal): on the progress display, or as a warning to a Python caller, whose
    frame is ``stacklevel`` above the caller of this."""
    if progress is not None:
        notify(progress, "measure", message=line)
    else:
        warnings.warn(line, stacklevel=stacklevel + 1)


def _recorded_shapes(row: Mapping[str, object]) -> dict[str, tuple[int, ...]]:
    text = str(row.get("input_shapes") or "")
    return parse_input_shapes(text.split(";")) if text else {}


def _model_files(paths: Sequence[str | Path], on_refused: Refused) -> list[Path]:
    """``paths`` with each directory replaced by its model files, as ``campaign create --models`` takes them
    (``latbench.client.model_paths``); a directory without any is refused."""
    from latbench.client import model_paths

    found: list[Path] = []
    for path in map(Path, paths):
        try:
            found += model_paths([path]) if path.is_dir() else [path]
        except LatbenchError as exc:
            _refuse(on_refused, str(path), one_line(exc))
    return found


def format_refusal(model: ModelFile, runtime: str, fmt: str) -> str | None:
    """Why ``runtime``, which loads ``fmt`` files, cannot take ``model``; ``None`` if it can. Said before any work
    (a campaign's upload, a measurement) rather than by the runtime or the collector after it."""
    if model.format == fmt:
        return None
    kind = {"onnx": "an ONNX file", "tflite": "a LiteRT model"}[model.format]
    use = {"onnx": "onnxruntime or tvm", "tflite": "tflite"}[model.format]
    return f"{kind}, which runtime {runtime} does not take; measure it with {use}"


def _open_models(
    paths: Sequence[str | Path],
    runtime: str,
    fmt: str,
    shapes: Mapping[str, tuple[int, ...]],
    on_refused: Refused,
    same: list[tuple[Path, ModelFile]],
) -> list[ModelFile]:
    """The distinct models among ``paths`` (directories give their model files) that ``runtime`` (which takes
    ``fmt`` files) can be asked to load with ``shapes``; the others are refused. ``shapes`` must name inputs these
    models have. A file with the content of an earlier one is added to ``same`` with that model, not opened twice."""
    opened: list[ModelFile] = []
    for path in _model_files(paths, on_refused):
        try:
            model = ModelFile.open(path)
        except LatbenchError as exc:
            _refuse(on_refused, str(path), one_line(exc))
            continue
        if (why := format_refusal(model, runtime, fmt)) is not None:
            _refuse(on_refused, str(path), why)
            continue
        kept = next((m for m in opened if m.sha256 == model.sha256), None)
        if kept is None:
            opened.append(model)
        elif kept.path.resolve() != model.path.resolve():
            same.append((model.path, kept))
    check_input_names(opened, shapes)
    fit: list[ModelFile] = []
    for model in opened:
        try:
            model.input_shapes(shapes)  # refused before anything is timed; an engine checks LiteRT files at load
        except ModelInputError as exc:
            _refuse(on_refused, str(model.path), one_line(exc))
            continue
        fit.append(model)
    return fit


def _labels(opened: Sequence[ModelFile], rows: Sequence[Mapping[str, object]]) -> dict[str, str]:
    """Each model's ``arch``: its file name, or ``name@<hash prefix>`` where another model of the run or of the
    results file has that name."""
    names = Counter(m.name for m in opened)
    holder = {str(r["arch"]): r["artifact_sha256"] for r in rows}
    return {
        m.sha256: m.name
        if names[m.name] == 1 and holder.get(m.name, m.sha256) == m.sha256
        else f"{m.name}@{m.sha256[:8]}"
        for m in opened
    }


def _already_measured(
    model: ModelFile, shapes: Mapping[str, tuple[int, ...]], fed: str, rows: Sequence[Mapping[str, object]]
) -> dict[str, object] | None:
    """The row of ``model`` timed with the given ``shapes`` on the input data ``fed`` describes (by content, not
    name), if ``rows`` hold one; a row without ``input_data`` was timed on random data of seed 0."""
    for row in rows:
        recorded = _recorded_shapes(row)
        if (
            row["artifact_sha256"] == model.sha256
            and all(recorded[n] == s for n, s in shapes.items() if n in recorded)
            and str(row.get("input_data") or random_description(0)) == fed
        ):
            return dict(row)
    return None


def _fed(
    opened: list[ModelFile], data: InputData | None, progress: Progress | None, on_refused: Refused
) -> list[ModelFile]:
    """The models ``data`` has an array for every input of (all of them without ``data``; the others refused).
    Without ``data``, a model with control flow is named: random data picks its branch or trip count."""
    fed: list[ModelFile] = []
    for model in opened:
        if data is None and model.control_flow:
            line = (
                f"{model.name}: holds control flow ({', '.join(model.control_flow)}), so its latency may depend on its "
                "input values, and it is timed on random ones: give representative inputs with --input-data FILE.npz"
            )
            _tell(progress, line, stacklevel=4)
        try:
            if data is not None and model.input_names is not None:
                data.check_covers(str(model.path), model.input_names)
        except ModelInputError as exc:
            _refuse(on_refused, str(model.path), one_line(exc))
            continue
        fed.append(model)
    return fed


def _measure_models(
    paths: Sequence[str | Path],
    inputs: Mapping[str, Sequence[int]] | Sequence[str] | None,
    runtime: str,
    provider: str,
    threads: int,
    settings: TimingSettings | None,
    out: str | Path | None,
    cache_dir: str | Path | None,
    reference: bool,
    progress: Progress | None,
    on_result: Callable[[dict[str, object]], None] | None,
    on_refused: Refused,
    quiet: QuietPolicy | None,
    input_data: str | Path | None = None,
    remote: RemoteRunner | None = None,
) -> list[dict[str, object]]:
    """Time each model file as it is: a file is known by its content hash (its ``arch`` is its file name,
    made unique), and one that cannot be inspected, loaded or run is refused on its own."""
    from latbench.artifacts import ArtifactCache

    settings = settings or TimingSettings()
    if not paths:
        raise LatbenchError("give at least one model file")
    if isinstance(inputs, Mapping):
        shapes = {name: tuple(int(d) for d in dims) for name, dims in inputs.items()}
    else:
        shapes = parse_input_shapes([inputs] if isinstance(inputs, str) else list(inputs or []))
    data = InputData.open(input_data) if input_data is not None else None
    shapes = data.shapes_with(shapes) if data is not None else shapes
    fed = data.describe() if data is not None else random_description(0)
    runtime_cls = get_runtime(runtime)
    if runtime_cls.artifact_format not in FORMATS:
        raise LatbenchError(
            f"runtime {runtime} times latbench's own {runtime_cls.artifact_format} artifacts, not model files; "
            "measure ONNX files with onnxruntime or tvm and .tflite files with tflite"
        )
    bench, run_settings = _open_bench(runtime_cls, threads, provider, settings, reference, quiet, remote)
    fmt = bench.artifact_format(DEFAULT_PRECISION)
    same: list[tuple[Path, ModelFile]] = []
    opened = _fed(_open_models(paths, runtime, fmt, shapes, on_refused, same), data, progress, on_refused)
    identity: dict[str, object] = {
        "space": MODEL_SET,
        "runtime": runtime,
        "provider": provider,
        "threads": threads,
        "device_id": bench.info.fingerprint(),
        **run_settings,
    }
    results = _results_file(out, identity)
    earlier = results.rows if results is not None else []
    label = _labels(opened, earlier)
    for path, kept in same:
        if kept.sha256 in label:
            line = f"{path.name}: the same file as {kept.path.name}, measured once as {label[kept.sha256]}"
            _tell(progress, line, stacklevel=3)
    rows = {m.sha256: row for m in opened if (row := _already_measured(m, shapes, fed, earlier)) is not None}
    todo = [m for m in opened if m.sha256 not in rows]
    notify(progress, "measure", len(rows), len(opened))
    try:
        if todo:
            bench.calibrate(ArtifactCache(Path(cache_dir) if cache_dir else None), fmt)
        for model in todo:
            try:
                t = bench.time(model.path, shapes, data.arrays if data is not None else None)
            except CannotTime as exc:  # refused on its own, untimed
                _refuse(on_refused, str(model.path), str(exc))
                continue
            used = format_shapes(t.input_shapes)
            subject = {
                "arch": label[model.sha256],
                "arch_index": None,
                "space": MODEL_SET,
                "batch": model_batch(used),
                "resolution": None,
                "classes": None,
                "opset": model.opset,
                "input_shapes": used,
                "input_data": fed,
            }
            row = _result_row(subject, model.sha256, t.engine, identity, bench.info, settings, t.measurement,
                              t.numpy_version)  # fmt: skip
            _keep(results, identity, row)
            rows[model.sha256] = row
            notify(progress, "measure", len(rows), len(opened))
            if on_result:
                on_result(row)
    finally:
        bench.close()
    return [rows[m.sha256] for m in opened if m.sha256 in rows]
