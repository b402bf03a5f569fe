"""The adaptive-sampling figures of docs/benchmarks.md: SRCC against the number of target samples for the
``adaptive``, ``encoding`` and ``random`` samplers, and the adaptive accuracy estimate at its stopping point.

    nice -n 5 env OMP_NUM_THREADS=1 python benchmarks/adaptive_sampling.py --out adaptive.json

Every sampler's picks are scored with one model, the acquisition's own fast transfer (the ensemble's linear
members, no network: what an adaptive campaign saves), so the figure compares the samples alone. For each task
on the built-in datasets, target device and trial, the pool is every architecture the device measured; the
SRCC is over that pool. Each trial scores ``--draws`` draws of the random and encoding samplers (their seeds
distinct across trials) against one adaptive run: a random sample's SRCC varies by 0.01-0.03 from draw to draw,
and two draws per device had put random at 20 0.006 above its mean over twenty. One adaptive run to the largest
sample count gives every smaller count (batches of 5, so a run stopped at 10 measured exactly the first 10 of a
longer one: without a target no verification batch is asked; a count inside a batch takes that batch's first
picks in the order the acquisition chose them, ``--samples 5,6,...,15,20 --others-at 20`` to find where adaptive
crosses random at 20); a second run stops at ``--target`` (budget
``--budget``; a target stop comes after its verification batch), and its estimate is compared with the true
SRCC there, and with a yardstick: the SRCC of the same model on as many fresh random architectures as the run
measured (``FRESH_DRAWS`` draws), what checking the model on a held-back random sample of that size would have
said; ``--check-sizes`` repeats that yardstick with other sample sizes (how many measurements a check needs to
be within 0.02 of the truth).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter

import numpy as np

from latbench import datasets
from latbench.predictor import adaptive, members
from latbench.predictor.predictor import pretrain_on
from latbench.predictor.samplers import sample_indices
from latbench.ranking import spearman

TASKS = ["ND", "FD", "FA", "F1", "F2", "F3", "F4", "OA", "O1"]
FRESH_DRAWS = 200


def true_srcc(acquisition: adaptive.Acquisition, device: str, rows: np.ndarray, latency: np.ndarray) -> float:
    """SRCC over the pool of the fast transfer fitted on the pool's ``rows``."""
    model = adaptive.fast_transfer(acquisition.pretrained, device, acquisition.inputs.rows(rows), np.log(latency[rows]))
    return float(spearman(members.predict_ensemble(acquisition.inputs, model.head), latency))


def fresh_gaps(
    predicted: np.ndarray, latency: np.ndarray, true: float, measured: np.ndarray, seed: int, size: int
) -> np.ndarray:
    """How far the SRCC on ``size`` fresh random architectures (none of ``measured``) lies from ``true``, the SRCC
    over the pool, over ``FRESH_DRAWS`` draws: the yardstick for an estimate made from that many results."""
    rng = np.random.default_rng(seed)
    rest = np.setdiff1d(np.arange(len(latency)), measured)
    draws = (rng.choice(rest, size=min(size, len(rest)), replace=False) for _ in range(FRESH_DRAWS))
    return np.abs(np.array([spearman(predicted[d], latency[d]) for d in draws]) - true)


def device_rows(task: str, ds: datasets.Dataset, pre, device: str, counts: list[int], trials: int, args) -> list[dict]:
    vector = ds.vector(device)
    measured = np.flatnonzero(~np.isnan(vector))
    archs = [ds.archs[i] for i in measured]
    latency = vector[measured]
    oracle = adaptive.table_oracle(archs, latency)
    rows = []
    for trial in range(trials):
        acquisition = adaptive.Acquisition(pre, archs, batch=5, seed=trial)
        t0 = time.perf_counter()
        order = acquisition.rows(adaptive.run(acquisition, device, oracle, max(counts)).archs) if counts else []
        seconds = time.perf_counter() - t0
        srcc: dict[str, dict[int, float]] = {"adaptive": {}, "random": {}, "encoding": {}}
        row: dict[str, object] = {"task": task, "device": device, "trial": trial, "adaptive_s": seconds, "srcc": srcc}
        for n in counts:
            srcc["adaptive"][n] = true_srcc(acquisition, device, order[:n], latency)
            if args.others_at and n not in args.others_at:
                continue
            for sampler in ("random", "encoding"):
                seeds = range(trial * args.draws, (trial + 1) * args.draws)
                picks = (sample_indices(ds.space, archs, n, sampler, seed, acquisition.codes) for seed in seeds)
                srcc[sampler][n] = float(np.mean([true_srcc(acquisition, device, p, latency) for p in picks]))
        stopped = adaptive.run(acquisition, device, oracle, args.budget, args.target)
        at = acquisition.rows(stopped.archs)
        predicted = members.predict_ensemble(acquisition.inputs, stopped.model.head)  # fitted on the run's results
        true = float(spearman(predicted, latency))
        fresh = fresh_gaps(predicted, latency, true, at, trial, len(at))
        row["stop"] = {
            "reason": stopped.stop,
            "checks": stopped.curve[-1].checks,
            "unverified": stopped.stop == "target" and stopped.caveat is not None,
            "samples": len(at),
            "estimate": stopped.curve[-1].srcc,
            "estimate_std": stopped.curve[-1].srcc_std,
            "true": true,
            "fresh_abs_gap": float(fresh.mean()),
            "fresh_within_0.02": float(np.mean(fresh <= 0.02)),
            "fresh_within_0.02_at": {
                n: float(np.mean(fresh_gaps(predicted, latency, true, at, trial, n) <= 0.02)) for n in args.check_sizes
            },
        }
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def summary(rows: list[dict], counts: list[int]) -> dict:
    """Per task and over all tasks: mean SRCC per sampler and count; the count adaptive needs to match random at
    20; the stops (``stops``)."""
    out: dict = {}
    for task in dict.fromkeys(r["task"] for r in rows):
        mine = [r for r in rows if r["task"] == task]
        mean = {s: {n: float(np.mean([r["srcc"][s][n] for r in mine])) for n in mine[0]["srcc"][s]}
                for s in mine[0]["srcc"]}  # fmt: skip
        out[task] = {
            "mean": mean,
            "adaptive_reaches_random20_at": reaches(mean, counts),
            "stop_samples": float(np.mean([r["stop"]["samples"] for r in mine])),
            "stop_reasons": dict(Counter(r["stop"]["reason"] for r in mine)),
            "stops": stops(mine),
            "fresh_within_0.02_at": {
                n: float(np.mean([r["stop"]["fresh_within_0.02_at"][n] for r in mine]))
                for n in mine[0]["stop"]["fresh_within_0.02_at"]
            },
        }
    samplers = list(rows[0]["srcc"])
    mean = {s: {n: float(np.mean([t["mean"][s][n] for t in out.values()])) for n in rows[0]["srcc"][s]}
            for s in samplers}  # fmt: skip
    reached = [t["adaptive_reaches_random20_at"] for t in out.values()]
    out["all"] = {  # each task once, whatever its device count; the stops pooled over every run
        "mean": mean,
        "adaptive_reaches_random20_at": reaches(mean, counts),
        "tasks_reach_random20_at_mean": None if None in reached else float(np.mean(reached)),
        "stops": stops(rows),
    }
    return out


def reaches(mean: dict, counts: list[int]) -> int | None:
    """The first count at which adaptive's mean SRCC is at least random's at 20."""
    return next((n for n in counts if mean["adaptive"][n] >= mean["random"][20]), None)


def stops(rows: list[dict]) -> dict:
    """The estimate against the truth at the stop, over all ``rows`` and by why they stopped (a target stop is where
    a user trusts the estimate; one the budget left too few check results for, ``target unverified``, is also
    counted apart), beside the fresh check of the same size."""
    out: dict = {}
    unverified = [r["stop"] for r in rows if r["stop"].get("unverified")]
    groups = {reason: [r["stop"] for r in rows if reason in ("all", r["stop"]["reason"])]
              for reason in ("all", *sorted({r["stop"]["reason"] for r in rows}))}  # fmt: skip
    for reason, mine in [*groups.items(), *([("target unverified", unverified)] if unverified else [])]:
        gaps = np.array([s["estimate"] - s["true"] for s in mine])
        out[reason] = {
            "runs": len(mine),
            "mean_gap": float(gaps.mean()),
            "mean_abs_gap": float(np.abs(gaps).mean()),
            "within_0.02": float(np.mean(np.abs(gaps) <= 0.02)),
            "fresh_abs_gap": float(np.mean([s["fresh_abs_gap"] for s in mine])),
            "fresh_within_0.02": float(np.mean([s["fresh_within_0.02"] for s in mine])),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument(
        "--samples", default="5,10,15,20,30", help='Counts of the curves; "" runs the stops alone (to try a stop rule).'
    )
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument(
        "--draws", type=int, default=5, help="Draws of the random and encoding samplers per trial (seeds never reused)."
    )
    parser.add_argument(
        "--others-at", default="", help="Counts at which random and encoding are scored (default: every count)."
    )
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--budget", type=int, default=60)
    parser.add_argument("--out", default=None)
    parser.add_argument(
        "--check-sizes", default="", help="Comma-separated sizes of fresh random checks of the stopped model."
    )
    args = parser.parse_args()
    args.check_sizes = [int(n) for n in args.check_sizes.split(",") if n]
    args.others_at = [int(n) for n in args.others_at.split(",") if n]
    counts = [int(n) for n in args.samples.split(",") if n]
    rows: list[dict] = []
    started = time.perf_counter()
    for name in args.tasks.split(","):
        task, ds = datasets.resolve_task(name)
        pre = pretrain_on(ds, task.train, "ridge")
        for device in task.test:
            rows += device_rows(task.name, ds, pre, device, counts, args.trials, args)
    result = {"rows": rows, "summary": summary(rows, counts), "seconds": time.perf_counter() - started}
    print(json.dumps(result["summary"], indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
