"""How good the transferred predictor is on this machine, judged on the held-out architectures only.

Two references put its SRCC in context: FLOPs (what a user gets for free) and the single public device whose
published latencies rank the held-out architectures best (chosen in hindsight, so it flatters that baseline).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from latbench.ranking import spearman
from latbench.spaces import get_space


@dataclass(frozen=True)
class Evaluation:
    holdout: int
    predictor_srcc: float
    flops_srcc: float
    best_public_device: str | None
    best_public_srcc: float
    public_srcc: dict[str, float]
    """SRCC of this machine against every public device, over every architecture measured here."""

    def as_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def public_dataset(space: str) -> str:
    from latbench.datasets.registry import BUILTIN_OF_SPACE

    return BUILTIN_OF_SPACE[get_space(space).name]


def public_latencies(space: str, archs: list[str]) -> dict[str, np.ndarray]:
    """Each public device's latencies of ``archs`` (NaN where the public table lacks an architecture)."""
    from latbench import datasets

    ds = datasets.load(public_dataset(space))
    where = {a: i for i, a in enumerate(ds.archs)}
    cols = np.array([where.get(a, -1) for a in archs])
    out = {}
    for device in ds.device_names:
        vector = ds.vector(device)
        out[device] = np.where(cols >= 0, vector[np.clip(cols, 0, None)], np.nan)
    return out


def _srcc(a: np.ndarray, b: np.ndarray) -> float:
    """SRCC over the architectures both sides have: nan below 3 of them (2 always rank alike or opposite), 0 where
    a side has one value throughout."""
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.nan_to_num(spearman(a[ok], b[ok]), nan=0.0)) if ok.sum() >= 3 else float("nan")


def evaluate(
    space: str, holdout: list[str], measured: dict[str, float], predicted: np.ndarray, all_measured: list[str]
) -> Evaluation:
    s = get_space(space)
    y = np.array([measured[a] for a in holdout])
    flops = np.array([s.costs(a).macs for a in holdout], dtype=np.float64)
    on_holdout = {d: _srcc(v, y) for d, v in public_latencies(space, holdout).items()}
    finite = {d: v for d, v in on_holdout.items() if np.isfinite(v)}
    best = max(finite, key=finite.__getitem__) if finite else None
    y_all = np.array([measured[a] for a in all_measured])
    public = {d: _srcc(v, y_all) for d, v in public_latencies(space, all_measured).items()}
    return Evaluation(
        holdout=len(holdout),
        predictor_srcc=_srcc(np.asarray(predicted, dtype=np.float64), y),
        flops_srcc=_srcc(flops, y),
        best_public_device=best,
        best_public_srcc=finite[best] if best else float("nan"),
        public_srcc=public,
    )
