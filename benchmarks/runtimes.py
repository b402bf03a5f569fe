"""Do the runtimes rank networks alike? The same seeded architectures measured by every runtime available here.

For each space: seeded architectures (NB201: ``nb201.sample(n, seed)``; FBNet: drawn from the 5,000 networks of
the public table), each measured by every runtime in turn (runtimes interleaved per architecture, so a drifting
machine slows them all alike). Prints per runtime: artifact build/compile seconds per network, the median of
the per-network median latencies and its ratio to ONNX Runtime, the SRCC between every pair of runtimes, and
the SRCC against the public devices (``latbench.datasets.load("help-<space>")``, top 3 and mean).

A *measurer* entry named ``<runtime>@<where>`` (see ``MEASURERS``) is a remote way to run ``<runtime>``; its
"vs local" column is the median per-network ratio of its latency to the local runtime's (the SSH runner's
overhead).

    nice -n 10 python benchmarks/runtimes.py --nb201 100 --fbnet 50
    nice -n 10 python benchmarks/runtimes.py --nb201 20 --fbnet 10 --runtimes onnxruntime tvm torch tflite
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

import latbench
import latbench.datasets
from latbench.agents.measure import TimingSettings, time_model
from latbench.agents.runtimes import available_runtimes, get_runtime, runtime_status
from latbench.artifacts import OPSET, Artifact, ArtifactCache, ArtifactKey

SETTINGS = TimingSettings(warmup_runs=5, warmup_time_s=0.1, min_runs=20, min_time_s=0.3, max_attempts=2)

Measurer = Callable[[str, ArtifactKey, ArtifactCache], float]
"""(runtime name, key, cache) -> median latency in ms."""


def local_measurer(threads: int) -> Measurer:
    def run(name: str, key: ArtifactKey, cache: ArtifactCache) -> float:
        runtime_cls = get_runtime(name)
        with runtime_cls(threads=threads) as rt:
            rt.load(cache.build(key, runtime_cls.artifact_format).path)
            return time_model(rt, SETTINGS).stats.median_ms

    return run


MEASURERS: dict[str, Measurer] = {}
"""Extra ways to measure, named ``<runtime>@<where>`` (the remote runners register theirs here)."""


def archs_of(space: str, n: int, seed: int, public: latbench.datasets.Dataset) -> list[str]:
    if space == "fbnet":
        rng = np.random.default_rng(seed)
        return [public.archs[i] for i in sorted(rng.choice(len(public.archs), n, replace=False))]
    return latbench.get_space(space).sample(n, seed)


def srcc(a: np.ndarray, b: np.ndarray) -> float:
    ok = ~(np.isnan(a) | np.isnan(b))
    return float(spearmanr(a[ok], b[ok]).statistic)


def bench_space(
    space: str, n: int, names: list[str], threads: int, seed: int, build_only: bool = False
) -> dict[str, object] | None:
    public = latbench.datasets.load(f"help-{space}")
    archs = archs_of(space, n, seed, public)
    s = latbench.get_space(space)
    keys = [ArtifactKey(space, a, 1, s.default_resolution, s.default_classes, OPSET, 0) for a in archs]
    cache = ArtifactCache()
    local = local_measurer(threads)
    build_s: dict[str, float] = {}
    for name in names:
        base = name.partition("@")[0]
        runtime_cls = get_runtime(base)
        started = time.perf_counter()
        # One converter process for every LiteRT model; float16 models are the float32 ones cast (a second).
        built: list[Artifact] = cache.build_many(keys, fmt=runtime_cls.artifact_format)
        if base == "tvm":  # compile every library now, outside the timed loop
            with runtime_cls(threads=threads) as rt:
                for artifact in built:
                    rt.compiled(artifact.path)  # type: ignore[attr-defined]
        build_s[name] = (time.perf_counter() - started) / len(keys)
        print(f"{space}: {name} artifacts ready ({build_s[name]:.1f} s per network)", flush=True)
    if build_only:
        return None
    latency = {name: np.full(len(keys), np.nan) for name in names}
    for i, key in enumerate(keys):
        for name in names:
            measurer = MEASURERS.get(name, local)
            latency[name][i] = measurer(name.partition("@")[0], key, cache)
        print(f"{space} {i + 1}/{len(keys)} " + " ".join(f"{k}={v[i]:.3f}" for k, v in latency.items()), flush=True)
    index = {a: j for j, a in enumerate(public.archs)}
    cols = [index[a] for a in archs]
    report: dict[str, object] = {"space": space, "archs": len(keys), "threads": threads, "runtimes": {}}
    base_ms = float(np.median(latency["onnxruntime"])) if "onnxruntime" in latency else None
    for name in names:
        ms = latency[name]
        vs_public = {d: srcc(ms, public.vector(d)[cols]) for d in public.device_names}
        top = sorted(vs_public.items(), key=lambda kv: -kv[1])[:3]
        local_name = name.partition("@")[0]
        report["runtimes"][name] = {  # type: ignore[index]
            "build_s_per_net": round(build_s[name], 2),
            "median_ms": round(float(np.median(ms)), 4),
            "ratio_to_onnxruntime": round(float(np.median(ms)) / base_ms, 2) if base_ms else None,
            "vs_local": round(float(np.median(ms / latency[local_name])), 3) if "@" in name else None,
            "srcc": {other: round(srcc(ms, latency[other]), 3) for other in names},
            "srcc_public_top3": {d: round(v, 3) for d, v in top},
            "srcc_public_mean": round(float(np.mean(list(vs_public.values()))), 3),
        }
    report["latency_ms"] = {name: latency[name].round(4).tolist() for name in names}
    report["arch_list"] = archs
    return report


def print_report(report: dict) -> None:
    names = list(report["runtimes"])
    print(f"\n{report['space']}: {report['archs']} networks, {report['threads']} thread(s)")
    print(f"{'runtime':<14}{'build s/net':>12}{'median ms':>11}{'x ORT':>7}{'vs local':>9}  public SRCC (mean; top 3)")
    for name, r in report["runtimes"].items():
        top = ", ".join(f"{d} {v:.2f}" for d, v in r["srcc_public_top3"].items())
        ratio = f"{r['ratio_to_onnxruntime']:.2f}" if r["ratio_to_onnxruntime"] else "-"
        vs_local = f"{r['vs_local']:.2f}" if r["vs_local"] else "-"
        print(
            f"{name:<14}{r['build_s_per_net']:>12.1f}{r['median_ms']:>11.3f}{ratio:>7}{vs_local:>9}  "
            f"{r['srcc_public_mean']:.2f}; {top}"
        )
    print("SRCC between runtimes")
    print(" " * 14 + "".join(f"{n[:11]:>12}" for n in names))
    for name, r in report["runtimes"].items():
        print(f"{name:<14}" + "".join(f"{r['srcc'][o]:>12.3f}" for o in names))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nb201", type=int, default=100, help="NB201 networks (0 to skip)")
    parser.add_argument("--fbnet", type=int, default=50, help="FBNet networks (0 to skip)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runtimes", nargs="*", default=None, help="default: every runtime available here")
    parser.add_argument("--out", type=Path, default=None, help="write the report as JSON here")
    parser.add_argument(
        "--build-only", action="store_true", help="build (and compile) every artifact into the cache, measure nothing"
    )
    args = parser.parse_args()

    names = args.runtimes or [n for n in available_runtimes() if runtime_status(n).available]
    names += [m for m in MEASURERS if m not in names]
    if "onnxruntime" in names:  # the reference of every ratio comes first
        names.remove("onnxruntime")
        names.insert(0, "onnxruntime")
    reports = []
    for space, n in (("nb201", args.nb201), ("fbnet", args.fbnet)):
        if n:
            report = bench_space(space, n, names, args.threads, args.seed, args.build_only)
            if report is not None:
                reports.append(report)
                print_report(report)
    if args.out:
        args.out.write_text(json.dumps(reports, indent=1))


if __name__ == "__main__":
    main()
