"""The predictor figures of docs/benchmarks.md: the paper's tasks with 5, 10 and 20 target samples.

    nice -n 10 python benchmarks/predictor_tasks.py --out predictor_tasks.json
    nice -n 10 python benchmarks/predictor_tasks.py --methods flops,ridge,nnls,cost-ridge --samples 20

For each task the predictor is pretrained once (per method) and transferred ``--trials`` times per target
device and sample count; SRCC over every architecture the target measured (the paper's protocol), and the
relative errors of the milliseconds (the rows' ``accuracy``; intervals: ``predictor_ms.py``). Also times a
transfer and the prediction of all 15,625 NB201 cells with the shipped pretrained model.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np

from latbench import datasets, predictor
from latbench.predictor.predictor import pretrain_on

TASKS = ["ND", "FD", "FA", "F1", "F2", "F3", "F4"]


def speed() -> dict[str, float]:
    """Seconds to transfer the shipped NB201 model from 20 samples, and to predict every NB201 cell."""
    ds = datasets.load("help-nb201")
    pre = predictor.load_pretrained("nb201")
    device = "pixel2"
    latency = ds.vector(device)
    pick = np.random.default_rng(0).choice(len(ds.archs), 20, replace=False)
    t0 = time.perf_counter()
    model = predictor.transfer(pre, "new-device", [ds.archs[i] for i in pick], latency[pick])
    t1 = time.perf_counter()
    archs = list(ds.archs)
    model.predict(archs)
    t2 = time.perf_counter()
    model.predict(archs)
    t3 = time.perf_counter()
    return {"transfer_s": t1 - t0, "predict_all_first_s": t2 - t1, "predict_all_s": t3 - t2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--methods", default="latbench")
    parser.add_argument("--samples", default="20,10,5")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--sampler", default="random")
    parser.add_argument("--out", default=None, help="Write all results as JSON here.")
    parser.add_argument("--no-speed", action="store_true")
    args = parser.parse_args()
    rows = []
    started = time.perf_counter()
    for method in args.methods.split(","):
        for name in args.tasks.split(","):
            task, ds = datasets.resolve_task(name)
            t0 = time.perf_counter()
            pre = pretrain_on(ds, task.train, method)
            pretrain_s = time.perf_counter() - t0
            for n in (int(s) for s in args.samples.split(",")):
                r = predictor.evaluate(name, n, args.trials, method, args.sampler, pretrained=pre)
                row = {**r.as_dict(), "sampler": args.sampler, "pretrain_s": pretrain_s, **r.seconds}
                rows.append(row)
                bar = predictor.BAR_20.get(name) if n == 20 else None
                verdict = "" if bar is None else ("  beats bar" if r.mean_srcc > bar else "  BELOW bar")
                within = r.mean_accuracy["within_10"]
                print(
                    f"{method:12s} {name} n={n:2d}: {r.mean_srcc:.3f} ± {r.std_srcc:.3f}"
                    f"  (bar {bar if bar else '-'}){verdict}  within ±10% {within:.1%}"
                    f"  transfer {r.seconds['transfer_mean']:.1f} s",
                    flush=True,
                )
    total = time.perf_counter() - started
    summary = {"rows": rows, "total_s": total}
    for method in args.methods.split(","):
        scores = [r["mean_srcc"] for r in rows if r["method"] == method and r["samples"] == 20]
        if scores and all(s > 0 for s in scores):
            summary[f"geomean_20_{method}"] = math.exp(float(np.mean(np.log(scores))))
    if not args.no_speed:
        summary["speed"] = speed()
    print(json.dumps({k: v for k, v in summary.items() if k != "rows"}, indent=2), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(summary, f, indent=2)
    sys.exit(0)


if __name__ == "__main__":
    main()
