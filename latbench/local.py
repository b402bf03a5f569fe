"""Measure architectures on this machine: build their artifacts first, then time them one by one.

This is what ``latbench measure`` runs. Every artifact is exported before the first timed run (export never
runs while timing), each result is appended to the results file as soon as it exists, and a re-run with the
same file skips what is already there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

import latbench
from latbench.agents.environment import MachineInfo, machine_info
from latbench.agents.measure import Measurement, ReferenceProbe, TimingSettings, time_model
from latbench.agents.runtimes import Runtime, get_runtime
from latbench.errors import LatbenchError
from latbench.progress import Progress, notify
from latbench.resultfile import ResultsFile
from latbench.results_schema import RECORDED_SETTINGS, result_row
from latbench.spaces import get_space


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
    runtime: Runtime,
    identity: dict[str, object],
    info: MachineInfo,
    settings: TimingSettings,
    m: Measurement,
) -> dict[str, object]:
    s = get_space(space)
    before, after = m.state_before, m.state_after
    assert before is not None and after is not None
    values = {
        "arch": arch,
        "arch_index": s.official_index(arch),
        **{k: identity[k] for k in ("space", "runtime")},
        "runtime_version": runtime.version(),
        **{k: identity[k] for k in ("provider", "batch", "threads", "resolution", "classes", "opset")},
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
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device_id": identity["device_id"],
        "latbench_version": latbench.__version__,
        **{f"cfg_{name}": getattr(settings, name) for name, _ in RECORDED_SETTINGS},
        "cfg_optimization": str(runtime.settings().get("optimization", "")),
        **{f"env_{k}": v for k, v in info.as_dict().items()},
        "env_numpy": np.__version__,
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
    space: str,
    archs: Sequence[str] | None = None,
    *,
    samples: int | None = None,
    seed: int = 0,
    connected_only: bool = False,
    runtime: str = "onnxruntime",
    provider: str = "cpu",
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
) -> list[dict[str, object]]:
    """Measure ``archs`` (or ``samples`` seeded ones) of ``space`` on this machine; return one row each.

    With ``out``, rows are appended as they finish and rows already in the file are kept and not measured
    again (the file must hold results of the same settings and device). ``reference`` times a fixed model
    between measurements to detect a drifting machine. ``progress`` hears stages ``export`` and ``measure``;
    ``on_result`` gets each new row.
    """
    from latbench.artifacts import OPSET, REFERENCE_KEY, ArtifactCache, ArtifactKey

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
    runtime_cls = get_runtime(runtime)
    engine = runtime_cls(threads=threads, provider=provider)
    info = machine_info()
    identity: dict[str, object] = {
        "space": s.name,
        "runtime": runtime,
        "provider": provider,
        "batch": batch,
        "threads": threads,
        "resolution": resolution,
        "classes": classes,
        "opset": OPSET,
        "device_id": info.fingerprint(),
    }
    results = ResultsFile(out) if out is not None else None
    if results is not None:
        results.check_compatible(identity)
    done = results.done() if results is not None else set()
    todo = [a for a in wanted if a not in done]

    cache = ArtifactCache(Path(cache_dir) if cache_dir else None)
    keys = [
        ArtifactKey(space=s.name, arch=a, batch=batch, resolution=resolution, classes=classes, opset=OPSET, seed=0)
        for a in todo
    ]
    artifacts = cache.build_many(keys, progress=progress, fmt=runtime_cls.artifact_format)
    probe = None
    if reference and todo:
        ref_engine = runtime_cls(threads=threads, provider=provider)
        ref_engine.load(cache.build(REFERENCE_KEY, runtime_cls.artifact_format).path)
        probe = ReferenceProbe(ref_engine)

    rows = [r for r in (results.rows if results else []) if r["arch"] in set(wanted)]
    measured = len(done & set(wanted))
    notify(progress, "measure", measured, len(wanted))
    try:
        for arch, artifact in zip(todo, artifacts, strict=True):
            engine.load(artifact.path)
            try:
                m = time_model(engine, settings, probe)
            finally:
                engine.close()
            row = _row(arch, s.name, artifact.sha256, engine, identity, info, settings, m)
            if results is not None:
                results.append(row)
            rows.append(row)
            measured += 1
            notify(progress, "measure", measured, len(wanted))
            if on_result:
                on_result(row)
    finally:
        if probe is not None:
            probe.runtime.close()
    order = {a: i for i, a in enumerate(wanted)}
    return sorted(rows, key=lambda r: order[str(r["arch"])])
