"""The milliseconds figures of docs/benchmarks.md: absolute accuracy and interval coverage at 20 samples.

    nice -n 10 python benchmarks/predictor_ms.py --out predictor_ms.json
    nice -n 10 python benchmarks/predictor_ms.py --first-trial 1 --out predictor_ms_1.json   # the next trial
    nice -n 10 python benchmarks/predictor_ms.py --tasks ND --splits "" --trials 2

For each built-in task and each generated hard split (``latbench tasks split``: train and test devices as unlike
as possible), pretrain once on the source devices, then per target device and trial sample 20 architectures at
random, ``transfer_and_validate`` (the transfer plus 5 cross-validating transfers, as ``latbench predictor
transfer`` does), and score every architecture the target measured but the transfer did not see: SRCC, relative
error (median, 90th percentile, within +/-5% and +/-10%), and the coverage of the 90% interval. Beside the
shipped predictor ("point"), two per-device calibrations fitted on the out-of-fold pairs, which were considered
as a fix for the scale: ``shift`` (times the median out-of-fold ratio measured/predicted) and ``loglinear``
(log ms = a + b log predicted, least squares).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from latbench import datasets
from latbench.datasets.tasks import Task
from latbench.predictor import accuracy, out_of_fold
from latbench.predictor.features import codes
from latbench.predictor.predictor import Predictor, pretrain_on
from latbench.predictor.samplers import sample_indices
from latbench.ranking import spearman

TASKS = ["ND", "FD", "FA", "F1", "F2", "F3", "F4"]
SPLITS = ["nb201:9:6:1", "fbnet:9:6:1"]
"""space:train:test:seed of the generated hard splits."""


def split_task(spec: str) -> tuple[Task, datasets.Dataset]:
    space, train, test, seed = spec.split(":")
    split = datasets.generate_split(space, int(train), int(test), int(seed))
    ds = datasets.load(f"help-{space}").select(list(split.train + split.test))
    return Task(f"split-{space}-{seed}", space, tuple(split.train), tuple(split.test)), ds


def calibrated(predicted: np.ndarray, pairs: tuple[list[float], list[float]]) -> dict[str, np.ndarray]:
    oof_predicted, oof_measured = np.log(pairs[0]), np.log(pairs[1])
    slope, intercept = np.polyfit(oof_predicted, oof_measured, 1)
    return {
        "point": predicted,
        "shift": predicted * np.exp(np.median(oof_measured - oof_predicted)),
        "loglinear": np.exp(intercept + slope * np.log(predicted)),
    }


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
            predicted = model.predict_codes(all_codes[held])
            pairs = out_of_fold.recorded(model)
            assert pairs is not None
            halfwidth = model.interval_halfwidth()
            low, high = accuracy.interval(predicted, halfwidth)
            row = {"task": task.name, "device": device, "trial": trial, "seconds": seconds,
                   "srcc": float(spearman(predicted, y)), "coverage": accuracy.coverage(low, high, y),
                   "interval_factor": float(np.exp(halfwidth))}  # fmt: skip
            for name, values in calibrated(predicted, pairs).items():
                row.update({f"{name}_{k}": v for k, v in accuracy.accuracy(values, y).items()})
            rows.append(row)
            print(
                f"{task.name} {device:16s} t{trial}: SRCC {row['srcc']:.3f} within10 {row['point_within_10']:.3f} "
                f"(shift {row['shift_within_10']:.3f}, loglinear {row['loglinear_within_10']:.3f}) "
                f"median {row['point_median_rel_error']:.3f} coverage {row['coverage']:.3f}  {seconds:.0f} s",
                flush=True,
            )
    return rows


def summary(rows: list[dict]) -> dict[str, float]:
    """Means over devices (each device's trials averaged first)."""
    devices = sorted({r["device"] for r in rows})
    keys = [k for k in rows[0] if k not in ("task", "device", "trial")]
    per_device = [{k: np.mean([r[k] for r in rows if r["device"] == d]) for k in keys} for d in devices]
    return {k: float(np.mean([p[k] for p in per_device])) for k in keys}


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
    args = parser.parse_args()
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
            f"== {task.name}: SRCC {s['srcc']:.3f} within10 {s['point_within_10']:.1%} median "
            f"{s['point_median_rel_error']:.1%} p90 {s['point_p90_rel_error']:.1%} coverage {s['coverage']:.1%}",
            flush=True,
        )
    print(json.dumps(summaries, indent=2))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"summaries": summaries, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
