"""How trustworthy are this machine's measurements? Two full passes over seeded architectures.

Prints (1) the SRCC between the two passes (the noise floor), (2) their median absolute relative difference,
(3) the SRCC against every public device in ../shared/data (top 5) and against FLOPs, (4) architectures measured
per minute and the overhead ratio: wall time of a pass / time spent inside timed runs (artifacts cached first),
(5) what the per-result memory reading costs, and with --profile (6) a third pass with ``--profile``: its
overhead ratio and the seconds the profile adds per architecture (the timed runs and their figures are those of
a pass without it).

    python benchmarks/measure_fidelity.py --samples 150            # NB201, batch 1, 1 thread
    python benchmarks/measure_fidelity.py --samples 150 --profile
    python benchmarks/measure_fidelity.py --space fbnet --samples 150
"""

from __future__ import annotations

import argparse
import csv
import gzip
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

import latbench
from latbench.agents.measure import TimingSettings
from latbench.agents.memory import peak_rss_mb, reset_peak
from latbench.artifacts import OPSET, REFERENCE_KEY, ArtifactCache, ArtifactKey
from latbench.profiles import DEFAULT_RUNS

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def public_latencies(space: str) -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, float]] = defaultdict(dict)
    with gzip.open(DATA / f"{space}_latency.csv.gz", "rt") as f:
        for row in csv.DictReader(f):
            table[row["device"]][row["arch"]] = float(row["latency_ms"])
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="nb201", choices=["nb201", "fbnet"])
    parser.add_argument("--samples", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out-dir", type=Path, default=None, help="keep the results files here")
    parser.add_argument("--profile", action="store_true", help="add a third pass with --profile")
    args = parser.parse_args()

    public = public_latencies(args.space)
    if args.space == "fbnet":  # FBNet's public table covers 5,000 sampled networks: measure some of those
        pool = sorted(next(iter(public.values())))
        rng = np.random.default_rng(args.seed)
        archs = [pool[i] for i in rng.choice(len(pool), args.samples, replace=False)]
    else:
        archs = latbench.get_space("nb201").sample(args.samples, args.seed)
    out_dir = args.out_dir or Path(tempfile.mkdtemp(prefix="fidelity-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    space = latbench.get_space(args.space)

    cache = ArtifactCache()
    t0 = time.perf_counter()
    keys = [ArtifactKey(args.space, a, 1, 32, space.default_classes, OPSET, 0) for a in archs]
    cache.build_many([*keys, REFERENCE_KEY])
    print(f"artifacts ready in {time.perf_counter() - t0:.1f} s ({len(archs)} architectures, cached after first run)")

    passes, walls, timed = [], [], []
    for p in (1, 2, 3) if args.profile else (1, 2):
        out = out_dir / f"pass{p}.csv"
        out.unlink(missing_ok=True)
        settings = TimingSettings(profile_runs=DEFAULT_RUNS if p == 3 else 0)
        t0 = time.perf_counter()
        rows = latbench.measure(args.space, archs, threads=args.threads, out=out, settings=settings)
        walls.append(time.perf_counter() - t0)
        timed.append(sum(sum(r["times_ms"]) for r in rows) / 1e3)
        passes.append({r["arch"]: float(r["latency_ms"]) for r in rows})
        unstable = sum(not r["stable"] for r in rows)
        print(f"pass {p}: {walls[-1]:.0f} s wall, {timed[-1]:.0f} s timed, {unstable} flagged unstable -> {out}")

    a = np.array([passes[0][x] for x in archs])
    b = np.array([passes[1][x] for x in archs])
    print(f"\n(1) pass-to-pass SRCC                : {spearmanr(a, b).statistic:.3f}")
    print(f"(2) median |relative difference|     : {100 * np.median(np.abs(a - b) / ((a + b) / 2)):.2f} %")
    mean = (a + b) / 2
    flops = np.array([space.costs(x).macs for x in archs])
    scores = {dev: spearmanr(mean, [lat[x] for x in archs]).statistic for dev, lat in public.items()}
    top = sorted(scores.items(), key=lambda kv: -kv[1])[:5]
    print("(3) SRCC against public devices (top 5): " + ", ".join(f"{d} {s:.3f}" for d, s in top))
    print(f"    SRCC against FLOPs                : {spearmanr(mean, flops).statistic:.3f}")
    per_min = [60 * len(archs) / w for w in walls]
    print(f"(4) architectures per minute          : {per_min[0]:.1f} / {per_min[1]:.1f}")
    print(f"    overhead ratio (wall / timed)     : {walls[0] / timed[0]:.3f} / {walls[1] / timed[1]:.3f}")
    print(
        f"    median latency                    : {np.median(mean):.3f} ms (min {mean.min():.3f}, max {mean.max():.3f})"
    )
    t0 = time.perf_counter_ns()
    for _ in range(1000):
        reset_peak()
        peak_rss_mb()
    reading_us = (time.perf_counter_ns() - t0) / 1e6
    share = reading_us / 1e6 * len(archs) / walls[1]
    print(f"(5) peak-memory reset + read, per attempt: {reading_us:.1f} us ({share:.1e} of a pass)")
    if args.profile:
        c = np.array([passes[2][x] for x in archs])
        extra = (walls[2] - walls[1]) / len(archs)
        print(f"(6) --profile pass: overhead ratio {walls[2] / timed[2]:.3f} (without: {walls[1] / timed[1]:.3f}); "
              f"{extra:+.2f} s per architecture; SRCC with pass 2 {spearmanr(b, c).statistic:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
