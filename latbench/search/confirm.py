"""Confirm a search's finalists by measurement: finalists that are measured, not predicted, within the limit.

Prediction errs most where it matters: the search pushes candidates to the latency limit, so some predicted
just under it run over, and some of the best, predicted just over it, run under. ``confirm`` walks the search
history best objective first and measures candidates predicted within ``limit * (1 + margin)`` until
``finalists`` of them are measured within the limit and no unmeasured candidate in that band ranks above the worst
of them, or until the measurement budget is spent.

The margin is not a constant: it is the relative over-prediction the predictor has shown (``margin.error_margin``)
on the evidence given (out-of-fold errors on the transfer samples, ``latbench.predictor.out_of_fold``) together
with every measurement the confirmation has made so far, re-estimated after each round. Without prior evidence
the first round has margin 0, so it measures exactly the predicted finalists, as plain verification does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from latbench.errors import LatbenchError
from latbench.progress import Progress, notify
from latbench.search.margin import MARGIN_QUANTILE, error_margin
from latbench.search.results import SearchResult, Verified

Measure = Callable[[list[str]], Mapping[str, float]]
"""Architectures -> measured ms; an architecture missing from the answer failed to measure."""
BUDGET_PER_FINALIST = 3


@dataclass(frozen=True)
class Confirmation:
    """What confirmation measured, in order, and the finalists it confirmed.

    ``stopped`` says why it ended: ``confirmed`` (the best candidates in the margin are measured and enough run
    within the limit), ``budget`` (measurements spent; ``complete`` says whether enough were found) or
    ``candidates`` (no unmeasured candidate predicted within the limit plus the margin was left).
    """

    max_latency_ms: float
    wanted: int
    budget: int
    margins: list[float]
    measured: list[Verified]
    failed: list[str]
    stopped: str

    @property
    def spent(self) -> int:
        """Measurements made, failed ones included."""
        return len(self.measured) + len(self.failed)

    @property
    def finalists(self) -> list[Verified]:
        """Candidates measured within the limit, best objective first, at most ``wanted``."""
        return _best_within(self.measured, self.wanted)

    @property
    def complete(self) -> bool:
        return len(self.finalists) == self.wanted

    def as_dict(self) -> dict[str, object]:
        return {
            "max_latency_ms": self.max_latency_ms,
            "wanted": self.wanted,
            "confirmed": len(self.finalists),
            "complete": self.complete,
            "budget": self.budget,
            "spent": self.spent,
            "stopped": self.stopped,
            "margins": self.margins,
            "finalists": [v.as_dict() for v in self.finalists],
            "measured": [v.as_dict() for v in self.measured],
            "failed": self.failed,
        }


def confirm(
    result: SearchResult,
    measure_ms: Measure,
    *,
    finalists: int | None = None,
    budget: int | None = None,
    evidence: tuple[Sequence[float], Sequence[float]] | None = None,
    margin: float | None = None,
    quantile: float = MARGIN_QUANTILE,
    progress: Progress | None = None,
) -> Confirmation:
    """Measure ``result``'s best candidates until ``finalists`` (default: as many as it has) run within its limit.

    ``budget`` caps the measurements (default ``3 x finalists``). ``evidence``: (predicted, measured) ms pairs
    the margin starts from; ``margin`` fixes it instead. Each round measures, best objective first, as many
    eligible candidates as finalists are missing, or once all are found, up to ``finalists`` eligible ones that
    would rank above the worst found (the margin may have grown, e.g. when the finalists ran well under their
    predictions); ``progress`` hears stage ``confirm`` before each round: measurements spent of the budget, and a
    message with the round's size and margin.
    """
    wanted = len(result.finalists) if finalists is None else finalists
    budget = BUDGET_PER_FINALIST * wanted if budget is None else budget
    if wanted < 1:
        raise LatbenchError(f"confirmation needs at least 1 finalist to look for, got {wanted}")
    if budget < 0:
        raise LatbenchError(f"the confirmation budget cannot be negative, got {budget}")
    if margin is not None and margin < 0:
        raise LatbenchError(f"the margin cannot be negative, got {margin}")
    prior_pred, prior_meas = ([], []) if evidence is None else (list(evidence[0]), list(evidence[1]))
    limit = result.max_latency_ms
    ranked = result.history.ranked()
    measured: list[Verified] = []
    failed: list[str] = []
    margins: list[float] = []
    done: set[str] = set()
    while True:
        confirmed = _best_within(measured, wanted)
        left = budget - len(measured) - len(failed)
        if left <= 0:
            stopped = "budget"
            break
        current = margin
        if current is None:
            current = error_margin(
                prior_pred + [v.predicted_ms for v in measured],
                prior_meas + [v.measured_ms for v in measured],
                quantile,
            )
        bound = limit * (1 + current)
        pool = [c for c in ranked if c.arch not in done and c.latency_ms <= bound]
        if len(confirmed) == wanted:
            pool = [c for c in pool if c.score > confirmed[-1].score]
        batch = pool[: min(wanted - len(confirmed) or wanted, left)]
        if not batch:
            stopped = "confirmed" if len(confirmed) == wanted else "candidates"
            break
        margins.append(current)
        notify(
            progress,
            "confirm",
            budget - left,
            budget,
            f"measuring {len(batch)} candidates predicted within the limit + {current:.1%}",
        )
        got = measure_ms([c.arch for c in batch])
        for c in batch:
            done.add(c.arch)
            ms = got.get(c.arch)
            if ms is None or not np.isfinite(ms):
                failed.append(c.arch)
            else:
                measured.append(Verified(c.arch, c.latency_ms, float(ms), c.score, limit))
    return Confirmation(limit, wanted, budget, margins, measured, failed, stopped)


def _best_within(measured: Sequence[Verified], wanted: int) -> list[Verified]:
    ok = [v for v in measured if v.within_limit]
    return sorted(ok, key=lambda v: (-v.score, v.measured_ms))[:wanted]
