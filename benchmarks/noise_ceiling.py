"""How close a published device table lets any predictor get: its noise, read off identical networks.

NAS-Bench-201 lists some networks twice under different names: when the cell's edge 2<-1 is ``none``, swapping
nodes 1 and 2 (edges 1<-0 with 2<-0, and 3<-1 with 3<-2) gives a cell that runs the same operations on the same
shapes, so its true latency is the same. 1,500 such pairs exist. The published tables measured each name once,
so how far a pair's two latencies lie apart is the table's own noise (timing noise, the phones' whole
milliseconds), which no predictor can remove. Per device this prints:

- ``apart``: the median and 90th percentile of a pair's relative difference (larger / smaller - 1);
- ``bound``: the share of predictions within ±10% that a predictor giving both names one value cannot exceed on
  these networks (a pair more than 1.1 / 0.9 apart has at least one of its two predictions outside ±10%);
- ``noise only``: the share within ±10% that predicting each network's true latency exactly would score, read
  from the pairs' log ratios (exact when the noise is Gaussian in log space, an estimate otherwise).

With ``--results`` (the ``--out`` files of ``benchmarks/predictor_ms.py``) it prints the predictor's share within
±10% on each NB201 target beside that device's ceiling, and the share over the transfers on devices whose noise
allows 90%. FBNet and OFA have no identical pairs in their tables, so only NB201 devices are read. For the
devices whose noise leaves less than 90%, it also prints what an additive model with every pair of (edge,
operation) terms scores within ±10% when fitted in milliseconds on all their cells (in sample: the best that
model family can do with unlimited samples; cells under 0.5 ms, the disconnected ones on pixel3 and raspi4, left
out).

    python benchmarks/noise_ceiling.py
    python benchmarks/noise_ceiling.py --results tasks.json splits.json
"""

from __future__ import annotations

import argparse
import math
from collections import defaultdict

import numpy as np
from predictor_ms import load_rows  # this directory: the --out files are predictor_ms's

from latbench import datasets
from latbench.spaces import nb201

LIMIT = 0.10
WIDEST = (1 + LIMIT) / (1 - LIMIT)  # two latencies farther apart than this cannot share a prediction within ±10%


def swapped(arch: str) -> str | None:
    """The NB201 cell that computes the same as ``arch`` with nodes 1 and 2 swapped; None when there is none."""
    a, b, between, x, c, d = nb201.parse_arch(arch)  # edges 1<-0 | 2<-0, 2<-1 | 3<-0, 3<-1, 3<-2
    if nb201.OPS[between] != "none":
        return None
    twin = nb201.format_arch((b, a, between, x, d, c))
    return twin if twin != arch else None


def identical_pairs(archs: tuple[str, ...]) -> list[tuple[int, int]]:
    """Index pairs of differently named cells that compute the same thing (each pair once)."""
    index = {a: i for i, a in enumerate(archs)}
    pairs = []
    for i, arch in enumerate(archs):
        twin = swapped(arch)
        if twin is not None and index[twin] > i:
            pairs.append((i, index[twin]))
    return pairs


def ceiling(latency: np.ndarray, pairs: np.ndarray) -> dict[str, float]:
    """One device's pair statistics (see the module docstring)."""
    a, b = latency[pairs[:, 0]], latency[pairs[:, 1]]
    ratio = np.maximum(a, b) / np.minimum(a, b)
    # d = e1 - e2; for Gaussian e, d / sqrt(2) is distributed as e (both signs, as e is symmetric about 0).
    e = np.log(ratio) / math.sqrt(2)
    low, high = math.log(1 - LIMIT), math.log(1 + LIMIT)
    noise_only = 0.5 * (np.mean((e > low) & (e < high)) + np.mean((-e > low) & (-e < high)))
    return {
        "pairs": float(len(pairs)),
        "apart_median": float(np.median(ratio) - 1),
        "apart_p90": float(np.quantile(ratio, 0.9) - 1),
        "bound": float(1 - np.mean(ratio > WIDEST) / 2),
        "noise_only": float(noise_only),
    }


def one_hot(archs: tuple[str, ...]) -> np.ndarray:
    """Each cell's six edges as one-hot operations, then every product of two edges' indicators."""
    k = len(nb201.OPS)
    columns = len(nb201.EDGES) * k
    single = np.zeros((len(archs), columns))
    for i, arch in enumerate(archs):
        for j, op in enumerate(nb201.parse_arch(arch)):
            single[i, j * k + op] = 1
    products = [single[:, i] * single[:, j] for i in range(columns) for j in range(i + 1, columns) if i // k != j // k]
    return np.column_stack([np.ones(len(archs)), single, *products])


def additive_share(features: np.ndarray, latency: np.ndarray) -> float:
    """In-sample share within ±10% of the pairwise additive model fitted by least squares in milliseconds."""
    keep = latency >= 0.5
    coef, *_ = np.linalg.lstsq(features[keep], latency[keep], rcond=None)
    fitted = features[keep] @ coef
    return float(np.mean(np.abs(fitted - latency[keep]) <= LIMIT * latency[keep]))


def is_nb201(row: dict) -> bool:
    return bool(row["task"] == "ND" or row["task"].startswith("split-nb201"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", nargs="*", default=[], help="predictor_ms.py --out files (NB201 rows used).")
    args = parser.parse_args()
    ds = datasets.load("help-nb201")
    pairs = np.array(identical_pairs(ds.archs))
    print(f"{len(pairs)} pairs of identical cells among {len(ds.archs)}")
    figures = {d.name: ceiling(ds.vector(d.name), pairs) for d in ds.devices}
    rows = load_rows(args.results)
    nb201_rows = [r for r in rows if is_nb201(r)]
    shares: dict[str, list[float]] = defaultdict(list)
    for row in nb201_rows:
        shares[row["device"]].append(float(row["after_within_10"]))  # the calibrated model
    print("| device | apart, median | apart, p90 | bound | noise only | predictor (transfers) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, f in sorted(figures.items(), key=lambda kv: kv[1]["noise_only"]):
        got = shares.get(name)
        mine = f"{np.mean(got):.1%} ({len(got)})" if got else ""
        print(
            f"| {name} | {f['apart_median']:.1%} | {f['apart_p90']:.1%} | {f['bound']:.1%} | "
            f"{f['noise_only']:.1%} | {mine} |"
        )
    features = one_hot(ds.archs)
    capped = set()  # devices whose table leaves no predictor 90% within ±10%, by both readings
    for name, f in sorted(figures.items(), key=lambda kv: kv[1]["noise_only"]):
        if f["noise_only"] < 0.9:
            share = additive_share(features, ds.vector(name))
            print(f"{name}: pairwise additive model fitted on all cells, in sample: {share:.1%} within ±10%")
            if share < 0.9:
                capped.add(name)
    print(f"tables under 90% by both the noise and the in-sample fit: {', '.join(sorted(capped))}")
    if not rows:
        return
    for label, group in (("NB201 transfers", nb201_rows), ("all transfers (FBNet, OFA devices by name)", rows)):
        for kind, part in (
            ("devices whose tables allow 90%", [r for r in group if r["device"] not in capped]),
            ("devices whose tables do not", [r for r in group if r["device"] in capped]),
        ):
            if part:
                within = np.mean([r["after_within_10"] for r in part])
                coverage = np.mean([r["after_coverage"] for r in part])
                devices = len({r["device"] for r in part})
                print(
                    f"{label}, {kind}: {len(part)} transfers on {devices} devices, within ±10% {within:.1%}, "
                    f"90% coverage {coverage:.1%}"
                )
    ratio = [r["after_within_10"] / figures[r["device"]]["noise_only"] for r in nb201_rows]
    print(f"NB201 transfers, share / noise-only ceiling: {np.mean(ratio):.2f}")


if __name__ == "__main__":
    main()
