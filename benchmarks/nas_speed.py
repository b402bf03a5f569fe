"""Wall-clock cost of latency-constrained NAS with the predictor versus measuring every candidate.

Both arms run the same aging evolution (same seed, same budget, same objective, same latency limit) on this
machine. The measuring arm times every candidate it proposes; the predictor arm measures the sampler's 20
suggestions, transfers the shipped predictor, cross-validates that transfer for its error margin, searches by
prediction, then confirms finalists by measuring the best candidates near the limit until enough of them run
within it (``latbench.search.confirm``). Before either arm is timed, one architecture neither arm measures is
measured untimed, so the first-call costs (imports, torch, ONNX export, onnxruntime session) are paid by
neither. Printed: the seconds each arm took (all steps included), the speedup, the measurements each arm made,
and how the final candidates compare (finalists measured within the limit, best objective of each arm, overlap).

    python benchmarks/nas_speed.py                        # NB201, budget 300, 5 finalists
    python benchmarks/nas_speed.py --budget 600 --min-time 0.5
"""

from __future__ import annotations

import argparse
import tempfile
import time
from importlib import import_module
from pathlib import Path

import numpy as np

from latbench import predictor
from latbench.agents.measure import TimingSettings
from latbench.local import measure
from latbench.search import agreement, confirm, cross_validated_errors, error_margin, search
from latbench.spaces import get_space


class MeasuringOracle:
    """Latency by real measurement, each architecture once; counts the seconds spent."""

    def __init__(self, space: str, settings: TimingSettings, cache: Path) -> None:
        self.space, self.settings, self.cache = space, settings, cache
        self.seconds = 0.0
        self.measured: dict[str, float] = {}

    def ms(self, archs: list[str]) -> dict[str, float]:
        todo = [a for a in dict.fromkeys(archs) if a not in self.measured]
        if todo:
            started = time.perf_counter()
            rows = measure(self.space, todo, settings=self.settings, cache_dir=self.cache)
            self.measured.update({str(r["arch"]): float(r["latency_ms"]) for r in rows})  # type: ignore[arg-type]
            self.seconds += time.perf_counter() - started
        return {a: self.measured[a] for a in archs if a in self.measured}

    def __call__(self, archs: list[str]) -> np.ndarray:
        found = self.ms(archs)
        return np.array([found[a] for a in archs])


def warm_up(space: str, settings: TimingSettings, cache: Path, avoid: set[str]) -> None:
    """Pay the first-call costs once, untimed: imports, torch, ONNX export, an onnxruntime session."""
    arch = next(a for a in get_space(space).sample(50, seed=12345) if a not in avoid)
    measure(space, [arch], settings=settings, cache_dir=cache)
    import_module("latbench.predictor.predictor")
    import_module("latbench.predictor.train")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="nb201")
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--finalists", type=int, default=5)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--confirm", type=int, default=None, help="Confirmation measurements (3 x finalists).")
    parser.add_argument("--objective", default="params")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-time", type=float, default=0.3, help="Seconds timed per architecture (both arms).")
    args = parser.parse_args()
    settings = TimingSettings(min_time_s=args.min_time, warmup_time_s=args.min_time / 2, min_runs=20)

    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        suggested = predictor.suggest(args.space, args.samples, "encoding", args.seed)
        warm_up(args.space, settings, cache / "warm", set(suggested))
        # Each arm exports its own artifacts (separate caches), as a user would.
        device = MeasuringOracle(args.space, settings, cache / "pred")
        t0 = time.perf_counter()
        samples = device.ms(suggested)
        t_samples = time.perf_counter() - t0
        t1 = time.perf_counter()
        pretrained = predictor.load_pretrained(args.space)
        model = predictor.transfer(pretrained, "this-machine", list(samples), list(samples.values()))
        t_transfer = time.perf_counter() - t1
        t2 = time.perf_counter()
        evidence = cross_validated_errors(pretrained, "this-machine", list(samples), list(samples.values()))
        t_margin = time.perf_counter() - t2
        limit = float(np.median(list(samples.values())))
        t3 = time.perf_counter()
        by_prediction = search(model.predict, args.space, limit, objective_name=args.objective,
                               budget=args.budget, finalists=args.finalists, seed=args.seed)  # fmt: skip
        t_search = time.perf_counter() - t3
        t4 = time.perf_counter()
        confirmed = confirm(by_prediction, device.ms, finalists=args.finalists, budget=args.confirm, evidence=evidence)
        t_confirm = time.perf_counter() - t4
        predictor_total = t_samples + t_transfer + t_margin + t_search + t_confirm

        oracle = MeasuringOracle(args.space, settings, cache / "meas")
        t5 = time.perf_counter()
        by_measurement = search(oracle, args.space, limit, objective_name=args.objective,
                                budget=args.budget, finalists=args.finalists, seed=args.seed)  # fmt: skip
        measured_total = time.perf_counter() - t5

    finals = confirmed.finalists
    checked = agreement(confirmed.measured)
    best_pred = finals[0].score if finals else float("nan")
    best_meas = by_measurement.finalists[0].score if by_measurement.finalists else float("nan")
    overlap = len({v.arch for v in finals} & {c.arch for c in by_measurement.finalists})
    margins = f"{error_margin(*evidence):.1%} out of fold, by round " + ", ".join(f"{m:.1%}" for m in confirmed.margins)
    plain = {c.arch for c in by_prediction.finalists}
    plain_checked = [v for v in confirmed.measured if v.arch in plain]
    print(f"space {args.space}, budget {args.budget}, limit {limit:.3f} ms (median of the {args.samples} samples)")
    print(f"predictor arm: {predictor_total:.1f} s  (measure {args.samples} samples {t_samples:.1f}, transfer "
          f"{t_transfer:.1f}, margin {t_margin:.1f}, search {t_search:.2f}, confirm {t_confirm:.1f})")  # fmt: skip
    print(f"measuring arm: {measured_total:.1f} s  ({len(oracle.measured)} architectures measured)")
    print(f"speedup: {measured_total / predictor_total:.2f}x")
    print(f"predictor arm measurements: {len(device.measured)} ({len(samples)} samples, {confirmed.spent} of "
          f"{confirmed.budget} confirmation); margin {margins}")  # fmt: skip
    print(f"predictor finalists (by prediction alone) within the limit when measured: "
          f"{sum(v.within_limit for v in plain_checked)}/{len(plain_checked)} of {len(plain)} measured")  # fmt: skip
    print(f"confirmation measured {len(confirmed.measured)}: {checked['within_limit']:.0%} within the limit, "
          f"median relative error {checked['median_rel_error']:.1%}; finalists measured within the limit: "
          f"{len(finals)}/{args.finalists} (stopped: {confirmed.stopped})")  # fmt: skip
    print(f"best {args.objective} within the limit: predictor arm {best_pred:.4g}, measuring arm {best_meas:.4g}; "
          f"finalist overlap {overlap}/{args.finalists}")  # fmt: skip


if __name__ == "__main__":
    main()
