"""Measure architectures, or users' own model files, on this machine or a remote device: build or inspect them
first, then time them one by one.

This is what ``latbench measure`` runs. Every artifact is exported before the first timed run (export never
runs while timing), each result is appended to the results file as soon as it exists, and a re-run with the
same file skips what is already there. A model file that cannot be timed is refused on its own; the others
are still measured (``models``). What a row records, and the results file it goes to, is ``record``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from latbench.agents.environment import MachineInfo
from latbench.agents.measure import Measurement, TimingSettings
from latbench.agents.quiet import QuietPolicy
from latbench.agents.runtimes import get_runtime
from latbench.benches import Engine, check_remote
from latbench.errors import LatbenchError
from latbench.local import record
from latbench.local.models import measure_models
from latbench.precision import DEFAULT as DEFAULT_PRECISION
from latbench.progress import Progress, notify
from latbench.spaces import get_space

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
    return record.row_of(subject, artifact_sha256, runtime, identity, info, settings, m, numpy_version)


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
        return measure_models(
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
    bench, run_settings = record.open_bench(get_runtime(runtime), threads, provider, settings, reference, quiet, remote)
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
    results = record.results_file(out, identity)
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
            record.keep(results, identity, row)
            rows.append(row)
            measured += 1
            notify(progress, "measure", measured, len(wanted))
            if on_result:
                on_result(row)
    finally:
        bench.close()
    order = {a: i for i, a in enumerate(wanted)}
    return sorted(rows, key=lambda r: order[str(r["arch"])])
