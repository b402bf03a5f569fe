"""One or more results as ``latbench results show`` prints them: the figures of each (latency, load, first run,
memory, stability) and, for a result measured with ``--profile``, where its time went by operator type.

A result comes from a results file (``latbench measure``'s, or an export) or from a collector by its id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from latbench import profiles
from latbench.errors import LatbenchError
from latbench.profiles import OpProfile, OpTypeTime
from latbench.resultfile import read_results

if TYPE_CHECKING:
    from latbench.client import CollectorClient

FIGURES = (
    "arch",
    "runtime",
    "provider",
    "latency_ms",
    "cv",
    "load_ms",
    "first_run_ms",
    "peak_rss_mb",
    "idle_waited_s",
    "stable",
    "flags",
)
"""The columns a view shows of its row."""


@dataclass(frozen=True)
class ResultView:
    row: Mapping[str, object]
    profile: OpProfile | None

    def figures(self) -> dict[str, object]:
        return {k: self.row.get(k) for k in FIGURES}

    def op_types(self, top: int | None = None) -> list[OpTypeTime]:
        """The profile's time by operator type, largest first; empty without a profile."""
        return profiles.by_op_type(self.profile, top) if self.profile else []


def from_file(path: str | Path, arch: str | None = None) -> list[ResultView]:
    """The results of a results file, or only those of architecture (or model file) ``arch``."""
    rows = read_results(path)
    if arch is not None:
        rows = [r for r in rows if r.get("arch") == arch]
        if not rows:
            raise LatbenchError(f"{path} has no result of {arch!r}")
    return [ResultView(row, profiles.load(path, row)) for row in rows]


def from_collector(client: CollectorClient, result_id: str) -> ResultView:
    """The stored measurement ``result_id`` of the collector ``client`` talks to."""
    row = client.result(result_id)
    return ResultView(row, profiles.load("", row))
