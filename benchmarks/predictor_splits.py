"""The development protocol's table (docs/benchmarks.md): generated device splits, chosen on dev, reported on report.

    nice -n 5 python benchmarks/predictor_splits.py --part report --trials 1 --out report.json
    nice -n 5 python benchmarks/predictor_splits.py --part dev --spaces fbnet --methods latbench --trials 1
    nice -n 5 python benchmarks/predictor_splits.py --spaces nb201 --extra-dataset here-nb201-int8

Splits come from ``latbench.datasets.protocol_splits`` (``latbench tasks splits``): hard splits and
leave-one-device-family-out splits per space, their targets dealt into a dev and a report part. Per split the
network is pretrained once (shared by ``latbench`` and ``nasflat``), then each target is transferred from
``--samples`` random samples per trial and scored by SRCC over every architecture it measured. The summary per
method: mean, geometric mean and worst decile (10th percentile) of the per-split SRCC, and each held-out family
against the paper's NASFLAT figure on the corresponding paper task.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time

import numpy as np

from latbench import datasets, predictor
from latbench.datasets.protocol import FAMILY_TASKS, ProtocolSplit, protocol_splits
from latbench.predictor.paper import PAPER_20
from latbench.predictor.predictor import NETWORK_OF, pretrain_on

SPACES = ("nb201", "fbnet", "ofa-mbv3")


def family_bar(split: ProtocolSplit) -> float | None:
    """The paper's best NASFLAT figure on the tasks that hold out ``split``'s family, if any."""
    tasks = FAMILY_TASKS.get((split.space, split.family or ""), ())
    return max((PAPER_20[t]["nasflat"] for t in tasks), default=None)


def run_split(split: ProtocolSplit, methods: list[str], samples: int, trials: int) -> list[dict]:
    task = split.task
    view = datasets.tasks.resolve(task, split.datasets)
    rows = []
    network: predictor.Predictor | None = None
    for method in methods:
        t0 = time.perf_counter()
        if method in NETWORK_OF and network is not None and NETWORK_OF[method] == NETWORK_OF[network.method]:
            pre = dataclasses.replace(network, method=method)
        else:
            pre = pretrain_on(view, task.train, method)
            if method in NETWORK_OF:
                network = pre
        r = predictor.evaluate(task, samples, trials, method, pretrained=pre, dataset_names=split.datasets)
        rows.append(
            {
                "split": split.name,
                "part": split.part,
                "kind": split.kind,
                "space": split.space,
                "family": split.family,
                "method": method,
                "samples": samples,
                "trials": trials,
                "mean_srcc": r.mean_srcc,
                "per_device": r.per_device,
                "bar": family_bar(split),
                "seconds": time.perf_counter() - t0,
            }
        )
        print(
            f"{split.name:28s} {method:9s} {r.mean_srcc:.3f}  "
            + " ".join(f"{d}={v:.3f}" for d, v in r.per_device.items())
            + f"  ({rows[-1]['seconds']:.0f} s)",
            flush=True,
        )
    return rows


def summarise(rows: list[dict], methods: list[str]) -> dict[str, dict]:
    summary = {}
    for method in methods:
        scores = np.array([r["mean_srcc"] for r in rows if r["method"] == method])
        if not len(scores):
            continue
        families = {
            f"{r['space']}/{r['family']}/{r['part']}": {"srcc": r["mean_srcc"], "bar": r["bar"]}
            for r in rows
            if r["method"] == method and r["kind"] == "family"
        }
        summary[method] = {
            "splits": len(scores),
            "mean": float(scores.mean()),
            "geomean": math.exp(float(np.mean(np.log(np.clip(scores, 1e-6, None))))),
            "worst_decile": float(np.percentile(scores, 10)),
            "families": families,
            "families_below_bar": sorted(k for k, v in families.items() if v["bar"] and v["srcc"] < v["bar"]),
        }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spaces", default=",".join(SPACES))
    parser.add_argument("--part", choices=["dev", "report", "both"], default="report")
    parser.add_argument("--methods", default="latbench,nasflat,flops")
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--trials", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="The protocol's seed (which devices are dev targets).")
    parser.add_argument("--hard", type=int, default=4, help="Hard splits generated per space.")
    parser.add_argument(
        "--extra-dataset", action="append", default=[], help="A dataset whose devices join its space's pool."
    )
    parser.add_argument("--splits", default=None, help="Comma-separated split names to run (default: all).")
    parser.add_argument("--out", default=None, help="Write all rows and the summary as JSON here.")
    args = parser.parse_args()
    methods = args.methods.split(",")
    extra_space = {name: datasets.load(name).space for name in args.extra_dataset}
    wanted = set(args.splits.split(",")) if args.splits else None
    rows: list[dict] = []
    started = time.perf_counter()
    for space in args.spaces.split(","):
        extra = [n for n, s in extra_space.items() if s == space]
        part = None if args.part == "both" else args.part
        for split in protocol_splits(space, part, args.seed, args.hard, extra=extra):
            if wanted is None or split.name in wanted:
                rows += run_split(split, methods, args.samples, args.trials)
    summary = summarise(rows, methods)
    print(f"{'method':10s} {'splits':>6s} {'mean':>6s} {'geomean':>7s} {'worst 10%':>9s}  below the paper's bar")
    for method, s in summary.items():
        below = ", ".join(s["families_below_bar"]) or "-"
        print(f"{method:10s} {s['splits']:6d} {s['mean']:6.3f} {s['geomean']:7.3f} {s['worst_decile']:9.3f}  {below}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(
                {"args": vars(args), "rows": rows, "summary": summary, "total_s": time.perf_counter() - started},
                f,
                indent=2,
            )


if __name__ == "__main__":
    main()
