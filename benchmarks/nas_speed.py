"""Wall-clock cost of latency-constrained NAS with the predictor versus measuring every candidate.

Both arms run the same aging evolution (same seed, same budget, same objective, same latency limit) on this
machine. The measuring arm times every candidate it proposes; the predictor arm measures the sampler's 20
suggestions, transfers the shipped predictor, searches by prediction, then measures its finalists to verify
them. Printed: the seconds each arm took (all steps included), the speedup, and how the two final candidate
sets compare (objective of the best, share of predictor finalists within the limit when measured, overlap).

    python benchmarks/nas_speed.py                        # NB201, budget 300, 5 finalists
    python benchmarks/nas_speed.py --budget 600 --min-time 0.5
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from latbench import predictor
from latbench.agents.measure import MeasureSettings
from latbench.local import measure
from latbench.search import agreement, search, verify


class MeasuringOracle:
    """Latency by real measurement, each architecture once; counts the seconds spent."""

    def __init__(self, space: str, settings: MeasureSettings, cache: Path) -> None:
        self.space, self.settings, self.cache = space, settings, cache
        self.seconds = 0.0
        self.measured: dict[str, float] = {}

    def __call__(self, archs: list[str]) -> np.ndarray:
        todo = [a for a in archs if a not in self.measured]
        if todo:
            started = time.perf_counter()
            rows = measure(self.space, todo, settings=self.settings, cache_dir=self.cache)
            self.measured.update({str(r["arch"]): float(r["latency_ms"]) for r in rows})  # type: ignore[arg-type]
            self.seconds += time.perf_counter() - started
        return np.array([self.measured[a] for a in archs])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="nb201")
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--finalists", type=int, default=5)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--objective", default="params")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-time", type=float, default=0.3, help="Seconds timed per architecture (both arms).")
    args = parser.parse_args()
    settings = MeasureSettings(min_time_s=args.min_time, warmup_time_s=args.min_time / 2, min_runs=20)

    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        # Each arm exports its own artifacts (separate caches), as a user would.
        t0 = time.perf_counter()
        suggested = predictor.suggest(args.space, args.samples, "encoding", args.seed)
        rows = measure(args.space, suggested, settings=settings, cache_dir=cache / "pred")
        samples = {str(r["arch"]): float(r["latency_ms"]) for r in rows}  # type: ignore[arg-type]
        t_samples = time.perf_counter() - t0
        t1 = time.perf_counter()
        model = predictor.transfer(
            predictor.load_pretrained(args.space), "this-machine", list(samples), list(samples.values())
        )
        t_transfer = time.perf_counter() - t1
        limit = float(np.median(list(samples.values())))
        t2 = time.perf_counter()
        by_prediction = search(model.predict, args.space, limit, objective_name=args.objective,
                               budget=args.budget, finalists=args.finalists, seed=args.seed)  # fmt: skip
        t_search = time.perf_counter() - t2
        t3 = time.perf_counter()
        finals = measure(args.space, [c.arch for c in by_prediction.finalists], settings=settings,
                         cache_dir=cache / "pred")  # fmt: skip
        t_verify = time.perf_counter() - t3
        checked = verify(by_prediction, {str(r["arch"]): float(r["latency_ms"]) for r in finals})  # type: ignore[arg-type]
        predictor_total = t_samples + t_transfer + t_search + t_verify

        oracle = MeasuringOracle(args.space, settings, cache / "meas")
        t4 = time.perf_counter()
        by_measurement = search(oracle, args.space, limit, objective_name=args.objective,
                                budget=args.budget, finalists=args.finalists, seed=args.seed)  # fmt: skip
        measured_total = time.perf_counter() - t4

    best_pred = max((v.score for v in checked if v.within_limit), default=float("nan"))
    best_meas = by_measurement.finalists[0].score if by_measurement.finalists else float("nan")
    overlap = len({c.arch for c in by_prediction.finalists} & {c.arch for c in by_measurement.finalists})
    print(f"space {args.space}, budget {args.budget}, limit {limit:.3f} ms (median of the {args.samples} samples)")
    print(f"predictor arm: {predictor_total:.1f} s  (measure {args.samples} samples {t_samples:.1f}, transfer "
          f"{t_transfer:.1f}, search {t_search:.2f}, verify {len(checked)} finalists {t_verify:.1f})")  # fmt: skip
    print(f"measuring arm: {measured_total:.1f} s  ({len(oracle.measured)} architectures measured)")
    print(f"speedup: {measured_total / predictor_total:.2f}x")
    print(f"predictor finalists within the limit when measured: {agreement(checked)['within_limit']:.0%}; "
          f"median relative error {agreement(checked)['median_abs_rel_error']:.1%}")  # fmt: skip
    print(f"best {args.objective} within the limit: predictor arm {best_pred:.4g}, measuring arm {best_meas:.4g}; "
          f"finalist overlap {overlap}/{args.finalists}")  # fmt: skip


if __name__ == "__main__":
    main()
