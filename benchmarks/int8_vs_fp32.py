"""How the int8 device ranks against the float32 one on the same architectures, and how much faster it is.

Reads the built-in ``here-<space>-int8`` (``benchmarks/measure_int8_dataset.py``) and prints: the SRCC between
``cpu_ort_int8`` and ``cpu_ort_fp32``; each one's SRCC with FLOPs and with the 27 devices of ``help-<space>`` on
the same architectures (mean, and the closest device); and the int8/fp32 latency ratio (quantiles, and for
NB201 by the cell's number of convolutions). The dataset's latencies are each result's fastest run; with
``--results`` (the folders the measurement wrote) it prints the SRCC on the results' medians too, which the busy
machine distorted. With ``--trials N``, the shipped NB201
predictor transferred to each device from 20 random architectures, SRCC on the others (mean and spread over N
draws; NB201 only, the space with a shipped predictor).

    python benchmarks/int8_vs_fp32.py --results int8-results int8-results/part2 --trials 5
    python benchmarks/int8_vs_fp32.py --space fbnet --results int8-results/fbnet1 int8-results/fbnet2
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from latbench import datasets, predictor
from latbench.resultfile import read_results
from latbench.spaces import get_space

DEVICES = ("cpu_ort_fp32", "cpu_ort_int8")


def srcc(a: np.ndarray, b: np.ndarray) -> float:
    return float(spearmanr(a, b).statistic)


def medians(space: str, folders: list[Path], archs: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Each device's median per architecture, from the results files (the dataset keeps the fastest runs)."""
    found: dict[str, np.ndarray] = {}
    for device in DEVICES:
        precision = device.rsplit("_", 1)[1]
        rows = [r for f in folders for r in read_results(f / f"{space}-{precision}.csv")]
        median = {str(r["arch"]): float(str(r["latency_ms"])) for r in rows}
        found[device] = np.array([median[a] for a in archs])
    return found


def transferred(ds: datasets.Dataset, device: str, trials: int, samples: int = 20) -> list[float]:
    """SRCC of the shipped NB201 predictor transferred from ``samples`` random architectures, on the others."""
    pretrained = predictor.load_pretrained("nb201")
    latency = ds.vector(device)
    scores = []
    for trial in range(trials):
        pick = np.random.default_rng(trial).choice(len(ds.archs), samples, replace=False)
        rest = np.setdiff1d(np.arange(len(ds.archs)), pick)
        model = predictor.transfer(pretrained, device, [ds.archs[i] for i in pick], latency[pick])
        scores.append(srcc(model.predict([ds.archs[i] for i in rest]), latency[rest]))
    return scores


def nb201_cells(archs: tuple[str, ...], ratio: np.ndarray, int8: np.ndarray) -> None:
    """What drives the NB201 int8/fp32 ratio: the cell's convolutions, against its pools and skips."""
    convs = np.array([a.count("nor_conv") for a in archs])
    by_convs = {n: float(np.median(ratio[convs == n])) for n in sorted(set(convs.tolist()))}
    print("median int8/fp32 by convolutions in the cell: " + ", ".join(
        f"{n}: {r:.2f} ({int((convs == n).sum())} cells)" for n, r in by_convs.items()))  # fmt: skip
    pools = np.array([a.count("avg_pool") + a.count("skip_connect") for a in archs])
    print(f"int8 SRCC with the count of pools and skips: {srcc(int8, pools):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="nb201", choices=["nb201", "fbnet"])
    parser.add_argument("--results", type=Path, nargs="*", default=[], help="Folders of the measurement's results.")
    parser.add_argument("--trials", type=int, default=0, help="Predictor transfers per device (20 samples each).")
    args = parser.parse_args()
    ds = datasets.load(f"here-{args.space}-int8")
    fp32, int8 = (ds.vector(d) for d in DEVICES)
    flops = np.array([get_space(args.space).costs(a).mflops for a in ds.archs])
    public_ds = datasets.load(f"help-{args.space}")
    position = {a: i for i, a in enumerate(public_ds.archs)}
    columns = [position[a] for a in ds.archs]
    print(f"{len(ds.archs)} {args.space} architectures, ONNX Runtime CPU, 1 thread, batch 1")
    print(f"SRCC int8 vs fp32: {srcc(int8, fp32):.3f}")
    for device, values in zip(DEVICES, (fp32, int8), strict=True):
        public = {d: srcc(values, public_ds.latency[i, columns]) for i, d in enumerate(public_ds.device_names)}
        closest = max(public, key=lambda d: public[d])
        print(
            f"{device}: SRCC with FLOPs {srcc(values, flops):.3f}; with help-{args.space}'s devices mean "
            f"{np.mean(list(public.values())):.3f}, closest {closest} {public[closest]:.3f}"
        )
    ratio = int8 / fp32
    q = np.quantile(ratio, [0.1, 0.5, 0.9])
    print(f"int8/fp32 latency: median {q[1]:.2f} (10% {q[0]:.2f}, 90% {q[2]:.2f}); int8 faster on "
          f"{(ratio < 1).mean():.0%} of architectures; ratio's SRCC with FLOPs {srcc(ratio, flops):.3f}")  # fmt: skip
    if args.space == "nb201":
        nb201_cells(ds.archs, ratio, int8)
    for device in DEVICES if args.trials and args.space == "nb201" else ():
        scores = transferred(ds, device, args.trials)
        print(f"predictor from 20 samples, {device}: SRCC {np.mean(scores):.3f} +- {np.std(scores):.3f}")
    if args.results:
        med = medians(args.space, args.results, ds.archs)
        contended = srcc(med["cpu_ort_int8"], med["cpu_ort_fp32"])
        print(f"on the results' medians instead: SRCC int8 vs fp32 {contended:.3f}; "
              f"median vs fastest run, fp32 {srcc(med['cpu_ort_fp32'], fp32):.3f}, "
              f"int8 {srcc(med['cpu_ort_int8'], int8):.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
