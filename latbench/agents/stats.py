"""Summary statistics of per-run latencies; the median is the headline figure used downstream."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class LatencyStats:
    """Statistics in milliseconds over the timed runs of one measurement."""

    median_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    p90_ms: float
    p99_ms: float
    mad_ms: float
    cv: float
    runs: int

    @classmethod
    def from_ns(cls, times_ns: np.ndarray | list[int]) -> LatencyStats:
        ms = np.asarray(times_ns, dtype=np.float64) / 1e6
        if ms.size == 0:
            raise ValueError("no timed runs to summarise")
        median = float(np.median(ms))
        mean = float(ms.mean())
        std = float(ms.std(ddof=1)) if ms.size > 1 else 0.0
        return cls(
            median_ms=median,
            mean_ms=mean,
            std_ms=std,
            min_ms=float(ms.min()),
            max_ms=float(ms.max()),
            p90_ms=float(np.percentile(ms, 90)),
            p99_ms=float(np.percentile(ms, 99)),
            mad_ms=float(np.median(np.abs(ms - median))),
            cv=std / mean if mean > 0 else 0.0,
            runs=int(ms.size),
        )

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)
