"""Target (a) of adaptive sampling scored with the model users get: ``latbench predictor eval --sampler S``.

    nice -n 5 env OMP_NUM_THREADS=1 python benchmarks/adaptive_shipped_model.py --out adaptive-shipped.json

``benchmarks/adaptive_sampling.py`` scores every sampler's picks with the acquisition's fast transfer (no network),
so its table compares the samples alone. This one scores them as ``latbench predictor eval`` does, with the default
method's full transfer (the network among the members): per task, one pretraining on the task's source devices,
then ``evaluate`` for each sampler and count, adaptive with seeds ``0..trials-1`` (one acquisition run each) and
random and encoding with ``--draws`` seeds (a random sample's SRCC varies from draw to draw). It prints each task's
mean SRCC per sampler and count, the nine tasks' mean, and per run (device and adaptive trial) adaptive at each
count minus random at 20 averaged over its draws.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from latbench import datasets
from latbench.predictor.evaluate import evaluate
from latbench.predictor.predictor import DEFAULT_METHOD, pretrain_on

TASKS = ["ND", "FD", "FA", "F1", "F2", "F3", "F4", "OA", "O1"]


def task_rows(task_name: str, adaptive_counts: list[int], trials: int, draws: int, others: list[int]) -> dict:
    task, ds = datasets.resolve_task(task_name, None)
    started = time.perf_counter()
    pre = pretrain_on(ds, task.train, DEFAULT_METHOD)
    runs: dict[str, dict[str, list[float]]] = {}
    for count in adaptive_counts:
        runs[f"adaptive@{count}"] = evaluate(task, count, trials, sampler="adaptive", pretrained=pre).srcc
    for sampler in ("random", "encoding"):
        for count in others:
            runs[f"{sampler}@{count}"] = evaluate(task, count, draws, sampler=sampler, pretrained=pre).srcc
    means = {key: float(np.mean([v for per in srcc.values() for v in per])) for key, srcc in runs.items()}
    base = runs.get("random@20")
    gaps = {}
    if base is not None:
        for count in adaptive_counts:
            per_run = [a - float(np.mean(base[d])) for d, values in runs[f"adaptive@{count}"].items() for a in values]
            gaps[count] = per_run
    print(f"{task_name}: " + ", ".join(f"{k} {v:.3f}" for k, v in means.items())
          + f" ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)  # fmt: skip
    return {"task": task_name, "devices": list(task.test), "means": means, "runs": runs, "gaps": gaps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--adaptive", default="10,13,15", help="Sample counts for the adaptive sampler.")
    parser.add_argument("--others", default="10,20", help="Sample counts for random and encoding.")
    parser.add_argument("--trials", type=int, default=4, help="Adaptive runs per device (seeds 0..trials-1).")
    parser.add_argument("--draws", type=int, default=10, help="Random and encoding draws per device.")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    counts = [int(c) for c in args.adaptive.split(",") if c]
    others = [int(c) for c in args.others.split(",") if c]
    rows = [task_rows(t, counts, args.trials, args.draws, others) for t in args.tasks.split(",") if t]
    keys = list(rows[0]["means"])
    summary = {key: float(np.mean([r["means"][key] for r in rows])) for key in keys}
    gaps = {c: float(np.mean([g for r in rows for g in r["gaps"].get(c, [])])) for c in counts}
    print("mean of tasks: " + ", ".join(f"{k} {v:.3f}" for k, v in summary.items()))
    print("per run, adaptive minus random@20: " + ", ".join(f"{c}: {g:+.3f}" for c, g in gaps.items()))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"tasks": rows, "summary": summary, "gaps": gaps, "args": vars(args)}, f, indent=1)


if __name__ == "__main__":
    main()
