"""The milliseconds figures of docs/benchmarks.md: absolute accuracy and interval coverage at 20 samples.

    nice -n 5 python benchmarks/predictor_ms.py --trials 3 --out predictor_ms.json
    nice -n 5 python benchmarks/predictor_ms.py --first-trial 1 --out predictor_ms_1.json   # the next trial
    nice -n 5 python benchmarks/predictor_ms.py --tasks ND --splits "" --trials 2
    python benchmarks/predictor_ms.py --combine predictor_ms.json predictor_ms_1.json   # figures by group

For each built-in task and each generated hard split (``latbench tasks split``: train and test devices as unlike
as possible), pretrain once on the source devices, then per target device and trial sample 20 architectures at
random, ``transfer_and_validate`` (the transfer, 5 cross-validating transfers and the device's calibration, as
``latbench predictor transfer`` does), and score every architecture the target measured but the transfer did not
see: SRCC, relative error (median, 90th percentile, within +/-5% and +/-10%), and the coverage of the 90%
interval. ``before_*``: the ensemble's own predictions with intervals on its own out-of-fold errors (latbench
before the calibration); ``after_*``: the calibrated model, as it predicts now.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from latbench import datasets
from latbench.datasets.tasks import Task
from latbench.predictor import accuracy, calibration, out_of_fold
from latbench.predictor.features import codes
from latbench.predictor.predictor import Predictor, pretrain_on
from latbench.predictor.samplers import sample_indices
from latbench.ranking import spearman

TASKS = ["ND", "FD", "FA", "F1", "F2", "F3", "F4", "OA", "O1"]
SPLITS = ["nb201:9:6:1", "fbnet:9:6:1"]
"""space:train:test:seed of the generated hard splits."""


def split_task(spec: str) -> tuple[Task, datasets.Dataset]:
    space, train, test, seed = spec.split(":")
    split = datasets.generate_split(space, int(train), int(test), int(seed))
    ds = datasets.load(f"help-{space}").select(list(split.train + split.test))
    return Task(f"split-{space}-{seed}", space, tuple(split.train), tuple(split.test)), ds


def run_task(task: Task, ds: datasets.Dataset, pre: Predictor, samples: int, trials: range) -> list[dict]:
    all_codes = codes(ds.space, ds.archs)
    rows = []
    for trial in trials:
        for device in task.test:
            latency = ds.vector(device)
            measured = np.flatnonzero(~np.isnan(latency))
            archs = [ds.archs[i] for i in measured]
            pick = measured[sample_indices(ds.space, archs, samples, "random", trial, all_codes[measured])]
            t0 = time.perf_counter()
            model = out_of_fold.transfer_and_validate(
                pre, device, [ds.archs[i] for i in pick], latency[pick], seed=trial
            )
            seconds = time.perf_counter() - t0
            held = measured[~np.isin(measured, pick)]
            y = latency[held]
            pairs = out_of_fold.recorded(model)
            assert pairs is not None
            after_oof, measured_oof = pairs
            figures = {
                "before": (model.predict_codes(all_codes[held], calibrated=False),
                           model.info[calibration.INFO_KEY]["model_out_of_fold_ms"]),
                "after": (model.predict_codes(all_codes[held]), after_oof),
            }  # fmt: skip
            row = {"task": task.name, "device": device, "trial": trial, "seconds": seconds,
                   "weight": model.info[calibration.INFO_KEY]["weight"]}  # fmt: skip
            for name, (predicted, oof) in figures.items():
                halfwidth = accuracy.log_halfwidth(oof, measured_oof)
                low, high = accuracy.interval(predicted, halfwidth)
                row[f"{name}_srcc"] = float(spearman(predicted, y))
                row[f"{name}_coverage"] = accuracy.coverage(low, high, y)
                row[f"{name}_interval_factor"] = float(np.exp(halfwidth))
                row.update({f"{name}_{k}": v for k, v in accuracy.accuracy(predicted, y).items()})
            print(
                f"{task.name} {device:16s} t{trial}: w {row['weight']:.2f} SRCC {row['before_srcc']:.3f} -> "
                f"{row['after_srcc']:.3f} within10 {row['before_within_10']:.3f} -> {row['after_within_10']:.3f} "
                f"median {row['before_median_rel_error']:.3f} -> {row['after_median_rel_error']:.3f} "
                f"coverage {row['before_coverage']:.3f} -> {row['after_coverage']:.3f}  {seconds:.0f} s",
                flush=True,
            )
            rows.append(row)
    return rows


def summary(rows: list[dict]) -> dict[str, float]:
    """Means over devices (each device's trials averaged first)."""
    devices = sorted({r["device"] for r in rows})
    keys = [k for k in rows[0] if k not in ("task", "device", "trial")]
    per_device = [{k: np.mean([r[k] for r in rows if r["device"] == d]) for k in keys} for d in devices]
    return {k: float(np.mean([p[k] for p in per_device])) for k in keys}


DEVELOPMENT = ("ND", "FD", "FA")
"""The tasks the calibration was designed on (its model, blend and weights); the others judge it."""
GPUS = ("1080ti", "2080ti", "titan", "v100")


def groups(rows: list[dict]) -> dict[str, list[dict]]:
    """Transfers grouped: all, held-out tasks, devices no development task targets, GPUs, the others."""
    developed = {r["device"] for r in rows if r["task"] in DEVELOPMENT}  # by name, in any space
    return {
        "all": rows,
        "held-out tasks": [r for r in rows if r["task"] not in DEVELOPMENT],
        "devices never developed on": [r for r in rows if r["device"] not in developed],
        "GPUs": [r for r in rows if r["device"].startswith(GPUS)],
        "not GPUs": [r for r in rows if not r["device"].startswith(GPUS)],
    }


def load_rows(paths: list[str]) -> list[dict]:
    """The per-transfer rows of ``--out`` files of earlier runs, in order."""
    rows = []
    for path in paths:
        with open(path) as f:
            rows += json.load(f)["rows"]
    return rows


def overall(paths: list[str]) -> None:
    """Each group's figures, averaged over its transfers, from the ``--out`` files of earlier runs."""
    for name, group in groups(load_rows(paths)).items():
        if not group:
            continue
        mean = {k: float(np.mean([r[k] for r in group])) for k in group[0] if k.startswith(("before_", "after_"))}
        in_band = {k: np.mean([0.88 <= r[f"{k}_coverage"] <= 0.92 for r in group]) for k in ("before", "after")}
        at_90 = {k: np.mean([r[f"{k}_within_10"] >= 0.9 for r in group]) for k in ("before", "after")}
        print(
            f"{name} ({len(group)} transfers): within10 {mean['before_within_10']:.1%} -> {mean['after_within_10']:.1%}"
            f" (transfers at >= 90%: {at_90['before']:.0%} -> {at_90['after']:.0%}), median "
            f"{mean['before_median_rel_error']:.1%} -> {mean['after_median_rel_error']:.1%}, coverage "
            f"{mean['before_coverage']:.1%} -> {mean['after_coverage']:.1%} (transfers in 88-92%: "
            f"{in_band['before']:.0%} -> {in_band['after']:.0%})"
        )


def main() -> None:
    import torch

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--splits", default=",".join(SPLITS), help="space:train:test:seed, comma-separated.")
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--trials", type=int, default=1)
    parser.add_argument("--first-trial", type=int, default=0, help="Seed of the first trial (trial t: seed t).")
    parser.add_argument("--out", default=None, help="Write all rows and summaries as JSON here.")
    parser.add_argument("--combine", nargs="+", default=None, help="Only print the groups' figures of --out files.")
    args = parser.parse_args()
    if args.combine:
        overall(args.combine)
        return
    jobs = [datasets.resolve_task(name) for name in args.tasks.split(",") if name]
    jobs += [split_task(spec) for spec in args.splits.split(",") if spec]
    rows, summaries = [], {}
    for task, ds in jobs:
        pre = pretrain_on(ds, task.train)
        task_rows = run_task(task, ds, pre, args.samples, range(args.first_trial, args.first_trial + args.trials))
        rows += task_rows
        summaries[task.name] = summary(task_rows)
        s = summaries[task.name]
        print(
            f"== {task.name}: within10 {s['before_within_10']:.1%} -> {s['after_within_10']:.1%} median "
            f"{s['before_median_rel_error']:.1%} -> {s['after_median_rel_error']:.1%} coverage "
            f"{s['before_coverage']:.1%} -> {s['after_coverage']:.1%}",
            flush=True,
        )
    print(json.dumps(summaries, indent=2))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"summaries": summaries, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
