"""Which architectures the quickstart measures: the sampler's suggestions to transfer from, and a disjoint
seeded random sample held out to judge the transferred predictor (never used to fit it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from latbench.errors import LatbenchError


@dataclass(frozen=True)
class Plan:
    transfer: list[str]
    holdout: list[str]

    @property
    def archs(self) -> list[str]:
        return [*self.transfer, *self.holdout]

    def as_dict(self) -> dict[str, list[str]]:
        return {"transfer": self.transfer, "holdout": self.holdout}


def make_plan(space: str, samples: int, holdout: int, seed: int) -> Plan:
    from latbench.predictor.samplers import candidate_archs, suggest

    if samples < 3:
        raise LatbenchError(
            f"the predictor needs at least 3 measured architectures to transfer, got --samples {samples}"
        )
    if holdout < 5:
        raise LatbenchError(f"judging the predictor needs at least 5 held-out architectures, got --holdout {holdout}")
    transfer = suggest(space, samples, "encoding", seed)
    chosen = set(transfer)
    pool = [a for a in candidate_archs(space) if a not in chosen]
    if holdout > len(pool):
        raise LatbenchError(f"--holdout {holdout} is more than the {len(pool)} architectures left to sample")
    picks = np.random.default_rng(seed + 1).choice(len(pool), size=holdout, replace=False)
    return Plan(transfer=transfer, holdout=[pool[i] for i in sorted(picks)])
