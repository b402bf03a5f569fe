"""What a search returns and what measuring its picks says: records shared by search, verify and confirm."""

from __future__ import annotations

from dataclasses import dataclass, field

from latbench.search.evolution import Candidate, History


@dataclass(frozen=True)
class SearchResult:
    """The best ``finalists`` by prediction; ``history`` keeps every candidate rated, for confirmation.

    ``queried`` is below ``budget`` when the search stopped early (``stopped_early``): ``STALE_ROUNDS`` rounds in a
    row proposed only architectures already rated.
    """

    space: str
    method: str
    objective: str
    max_latency_ms: float
    budget: int
    queried: int
    feasible: int
    finalists: list[Candidate]
    seconds: float
    history: History = field(default_factory=History, repr=False, compare=False)

    @property
    def stopped_early(self) -> bool:
        return self.queried < self.budget


@dataclass(frozen=True)
class Verified:
    """A finalist with its measured latency next to the predicted one.

    ``predicted_ms`` is what the search's oracle rated it (the latency compared with the limit): the prediction,
    or its interval's upper bound when the oracle is one.
    """

    arch: str
    predicted_ms: float
    measured_ms: float
    score: float
    max_latency_ms: float

    @property
    def within_limit(self) -> bool:
        return self.measured_ms <= self.max_latency_ms

    def as_dict(self) -> dict[str, object]:
        return {
            "arch": self.arch,
            "predicted_ms": self.predicted_ms,
            "measured_ms": self.measured_ms,
            "score": self.score,
            "within_limit": self.within_limit,
        }
