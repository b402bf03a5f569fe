"""One or more results as ``latbench results show`` prints them: the figures of each (latency, load, first run,
memory, stability) and, for a result measured with ``--profile``, where its time went by operator type.

A result comes from a results file (``latbench measure``'s, or an export) or from a collector by its id. The
dashboard's result panel shows ``ResultView.summary``, whose operator table is the one the CLI prints, cell for
cell, so the page formats no figure of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from latbench import profiles, stability
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
IDENTITY = ("artifact_sha256", "input_shapes", "device", "result_id")
"""What ``--json`` adds so a result joins back to its file and, from a collector, its device and stored result."""
DETAILS = (
    "result_id",
    "device",
    "agent",
    "measured_at",
    "mean_ms",
    "min_ms",
    "max_ms",
    "runs",
    "attempts",
    "idle_load",
)
"""The further columns of a summary: where and when it was measured and the spread of its runs."""
ENVIRONMENT = (
    "runtime_version",
    "batch",
    "threads",
    "env_cpu_model",
    "env_cores_logical",
    "env_memory_gb",
    "env_os",
    "env_governor",
    "env_load_1m_before",
    "env_temperature_c_before",
    "latbench_version",
)
"""The setup and machine state a summary names (the row holds more)."""
OP_COLUMNS = ("op type", "ms per run", "share", "nodes")


@dataclass(frozen=True)
class ResultView:
    row: Mapping[str, object]
    profile: OpProfile | None

    def figures(self) -> dict[str, object]:
        """The ``FIGURES`` of the row; ``flags`` is text ("" for none) whether read from CSV, parquet or a collector."""
        return {k: self.row.get(k) for k in FIGURES} | {"flags": str(self.row.get("flags") or "")}

    def as_json(self, top: int | None = None) -> dict[str, object]:
        """What ``latbench results show --json`` prints of the result: its figures, identity and operator types."""
        return {
            **self.figures(),
            **{k: self.row.get(k) for k in IDENTITY},
            "op_types": [asdict(t) for t in self.op_types(top)],
        }

    def op_types(self, top: int | None = None) -> list[OpTypeTime]:
        """The profile's time by operator type, largest first; empty without a profile."""
        return profiles.by_op_type(self.profile, top) if self.profile else []

    def op_table(self, top: int | None = None) -> tuple[str, list[tuple[str, str, str, str]]] | None:
        """The title and rows (``OP_COLUMNS``, as printed) of the top operator types; None without a profile."""
        return self._op_table(self.op_types(top))

    def _op_table(self, types: list[OpTypeTime]) -> tuple[str, list[tuple[str, str, str, str]]] | None:
        if self.profile is None:
            return None
        title = f"top operator types ({self.profile.runs} profiled runs, {self.profile.total_ms:.3f} ms per run in all)"
        return title, [(t.op, f"{t.ms:.4f}", f"{t.share:.1%}", str(t.nodes)) for t in types]

    def summary(self, top: int | None = None) -> dict[str, object]:
        """Everything the dashboard's result panel shows, JSON-ready: the figures, details, flags in words, the
        environment and the operator table as ``latbench results show`` prints it (``op_table`` null without a
        profile), besides the figures of each operator type (``op_types``, as ``--json`` gives them)."""
        types = self.op_types(top)
        table = self._op_table(types)
        return {
            **self.figures(),
            **{k: self.row.get(k) for k in DETAILS},
            "flag_words": stability.words(self.row),
            "environment": {k: self.row.get(k) for k in ENVIRONMENT},
            "op_types": [asdict(t) for t in types],
            "op_table": None
            if table is None
            else {"title": table[0], "columns": list(OP_COLUMNS), "rows": [list(r) for r in table[1]]},
        }


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
    return from_export_row(client.result(result_id))


def from_export_row(row: Mapping[str, object]) -> ResultView:
    """A collector's export row, whose profile travels inline."""
    return ResultView(row, profiles.load("", row))
