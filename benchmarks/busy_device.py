"""Measurements on a busy device: the same NB201 architectures measured quiet, then beside 1 and 2 competing
CPU-bound processes (real subprocesses), with and without --wait-idle.

Two kinds of competitor: one that works in bursts shorter than the wait bound and pauses between them (a periodic
background job: it "stops within the wait bound"), and one that never stops. Each pass prints, against the quiet
pass: the SRCC, the median absolute relative difference, the share of results unstable and the share flagged
(any flag, ``still_busy`` included), the seconds waited, and what the user is told (``latbench.stability``).

    python benchmarks/busy_device.py                  # 40 architectures, 9 passes, a few minutes once cached
    python benchmarks/busy_device.py --archs 5        # a quick end-to-end check
    python benchmarks/busy_device.py --same-core      # competitors and timing on core 0 (many-core machines)

The wait threshold is half a core of other work (``--threshold``, in cores), so that one competitor counts as
busy on any machine; ``latbench measure --wait-idle``'s default is a quarter of all cores.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr

import latbench
from latbench import stability
from latbench.agents.measure import TimingSettings
from latbench.agents.quiet import QuietPolicy, others_busy, pin_to_core
from latbench.artifacts import OPSET, REFERENCE_KEY, ArtifactCache, ArtifactKey

SETTINGS = TimingSettings(warmup_runs=5, warmup_time_s=0.05, min_runs=20, min_time_s=0.2, max_attempts=2)
"""Shortened settings, so that 9 passes take minutes; the stability checks are the defaults."""
COMPETITOR = """
import sys, time
busy, gap = float(sys.argv[1]), float(sys.argv[2])
while True:
    end = time.monotonic() + busy
    while time.monotonic() < end:
        pass
    if gap > 0:
        time.sleep(gap)
"""


@dataclass(frozen=True)
class Pass:
    label: str
    competitors: int
    never_stops: bool
    wait: bool


def competitors(n: int, busy_s: float, gap_s: float, core: int | None) -> list[subprocess.Popen[bytes]]:
    """``n`` CPU-bound processes: busy ``busy_s`` then idle ``gap_s``, forever (``gap_s`` 0: never idle)."""
    procs = [subprocess.Popen([sys.executable, "-c", COMPETITOR, str(busy_s), str(gap_s)]) for _ in range(n)]
    if core is not None:
        for proc in procs:
            os.sched_setaffinity(proc.pid, {core})
    return procs


def run_pass(
    p: Pass, archs: list[str], args: argparse.Namespace, core: int | None
) -> tuple[list[dict[str, object]], float]:
    wait_max = args.never_wait_max if p.never_stops else args.wait_max
    threshold = args.threshold / (os.cpu_count() or 1)
    quiet = QuietPolicy(threshold=threshold, max_wait_s=wait_max) if p.wait else None
    procs = competitors(p.competitors, args.burst_s, 0.0 if p.never_stops else args.gap_s, core)
    try:
        time.sleep(0.5 if procs else 0.0)
        t0 = time.perf_counter()
        rows = latbench.measure("nb201", archs, settings=SETTINGS, quiet=quiet)
        return rows, time.perf_counter() - t0
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", type=int, default=40, help="NB201 architectures (seeded sample)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--competitors", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--burst-s", type=float, default=2.0, help="a bursting competitor's busy time")
    parser.add_argument("--gap-s", type=float, default=2.0, help="its pause between bursts")
    parser.add_argument("--wait-max", type=float, default=5.0, help="wait bound beside a bursting competitor")
    parser.add_argument("--never-wait-max", type=float, default=1.0, help="wait bound beside a never-stopping one")
    parser.add_argument("--threshold", type=float, default=0.5, help="other work (cores) that counts as busy")
    parser.add_argument("--same-core", action="store_true", help="pin the timing and the competitors to core 0")
    args = parser.parse_args()
    if args.burst_s >= args.wait_max:
        parser.error("--burst-s must be shorter than --wait-max: the bursting competitor stops within the bound")

    core = 0 if args.same_core else None
    if core is not None:
        pin_to_core(core)
    archs = latbench.get_space("nb201").sample(args.archs, args.seed)
    t0 = time.perf_counter()
    ArtifactCache().build_many([*(ArtifactKey("nb201", a, 1, 32, 10, OPSET, 0) for a in archs), REFERENCE_KEY])
    print(f"artifacts ready in {time.perf_counter() - t0:.1f} s; {os.cpu_count()} cores; timing settings {SETTINGS}")
    others = others_busy(2.0)
    if others is not None and others > args.threshold / 2:
        print(f"warning: the machine is not quiet ({others:.2f} cores busy with other programs): the 'quiet' pass "
              "is not a quiet reference and these figures say little; run it on an idle machine")  # fmt: skip

    passes = [Pass("quiet", 0, False, False)]
    for n in args.competitors:
        for never in (False, True):
            kind = "never stops" if never else f"bursts {args.burst_s:g}s/{args.gap_s:g}s"
            for wait in (False, True):
                passes.append(
                    Pass(f"{n} competitor(s), {kind}, {'--wait-idle' if wait else 'no wait'}", n, never, wait)
                )

    quiet: np.ndarray | None = None
    table = []
    for p in passes:
        rows, wall = run_pass(p, archs, args, core)
        latency = np.array([float(r["latency_ms"]) for r in rows])  # type: ignore[arg-type]
        if quiet is None:
            quiet = latency
        srcc = float(spearmanr(quiet, latency).statistic) if len(archs) > 1 else float("nan")
        diff = 100 * float(np.median(np.abs(latency - quiet) / quiet))
        unstable = sum(stability.is_unstable(r) for r in rows) / len(rows)
        flagged = sum(bool(r["flags"]) for r in rows) / len(rows)
        waited = sum(float(str(r["idle_waited_s"] or 0.0)) for r in rows)
        table.append((p.label, srcc, diff, unstable, flagged, waited, wall))
        told = stability.summary(rows) or "(nothing: every result stable)"
        print(f"\n{p.label}: SRCC {srcc:.3f}, median |diff| {diff:.1f} %, unstable {unstable:.0%}, "
              f"flagged {flagged:.0%}, waited {waited:.1f} s, wall {wall:.0f} s\n  told: {told}")  # fmt: skip

    print("\n| pass | SRCC vs quiet | median abs. rel. diff | unstable | flagged | waited (s) | wall (s) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, srcc, diff, unstable, flagged, waited, wall in table:
        print(f"| {label} | {srcc:.3f} | {diff:.1f} % | {unstable:.0%} | {flagged:.0%} | {waited:.1f} | {wall:.0f} |")


if __name__ == "__main__":
    main()
