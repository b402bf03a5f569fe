"""Summary statistics of per-run latencies; the median is the headline figure used downstream."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

MAD_TO_SIGMA = 1.4826
"""The MAD of normally distributed values times this is their standard deviation."""
IQR_TO_SIGMA = 1.349
"""The interquartile range of normally distributed values over this is their standard deviation."""


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
    robust_cv: float | None = field(default=None, compare=False)
    """(p75 - p25) / (1.349 * median): the CV of normally distributed runs, but blind to the few runs the OS
    preempted. A preempted run of a 20 us model takes 25-127x the median; a handful of them make ``cv`` (std / mean)
    exceed 1 while the median is exact to a few percent. The quartiles move once a quarter of the runs are
    disturbed, well before the median does (at half): a busy machine is still caught, and in time. None where only
    a tool's summary is known (``spread`` falls back to ``cv``). Not part of a result's record: ``times_ms`` is."""

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
            robust_cv=float(np.subtract(*np.percentile(ms, [75, 25]))) / (IQR_TO_SIGMA * median) if median > 0 else 0.0,
        )

    @property
    def spread(self) -> float:
        """What the stability verdict judges against ``cv_threshold``: ``robust_cv``, else ``cv``."""
        return self.cv if self.robust_cv is None else self.robust_cv

    def as_dict(self) -> dict[str, float | int]:
        """The fields a result records (``protocol.LatencyStatsModel``)."""
        values = asdict(self)
        del values["robust_cv"]
        return values
