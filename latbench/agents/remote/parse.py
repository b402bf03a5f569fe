"""Parsers for what device benchmark tools print, into per-run times or a summary, then ``LatencyStats``.

- ``onnxruntime_perf_test`` writes every run's time (seconds) to its result file, one CSV line per run
  (``model,seconds,peak_bytes,cpu_percent,run``), and prints a summary (requests, average, min/max/P50...P999).
  The per-run times give exactly the statistics of a local measurement; the summary cross-checks them.
- TFLite's ``benchmark_model`` prints only a summary per loop, in microseconds:
  ``count=784 first=1263 curr=1254 min=1198 max=1876 avg=1272.99 std=58`` (or ``count=5 curr=1200(all same)``),
  one line for the warm-up loop, then one for the timed loop. It has no median or percentiles, so the median is
  its mean, p90/p99 its max, and MAD the normal approximation 0.6745 std (``SUMMARY_FLAG`` marks such results).
- The ``python -m latbench.agents.remote`` stub prints one ``RESULT_MARKER`` line of JSON.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from latbench.agents.stats import LatencyStats
from latbench.errors import RemoteError

RESULT_MARKER = "LATBENCH-RESULT "
LOADED_MARKER = "LATBENCH-LOADED"
"""The stub's line once the model is loaded: what follows is the timing, whose length the settings bound."""
SUMMARY_FLAG = "summary_stats"

_NUMBER = r"[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?"
_TFLITE_STAT = re.compile(
    rf"count=(?P<count>\d+)(?: first=(?P<first>{_NUMBER}))? curr=(?P<curr>{_NUMBER})"
    rf"(?: min=(?P<min>{_NUMBER}) max=(?P<max>{_NUMBER}) avg=(?P<avg>{_NUMBER}) std=(?P<std>{_NUMBER}))?"
)
_PERF_LINE = re.compile(rf"^(?P<key>[A-Za-z0-9 ]+?):\s*(?P<value>{_NUMBER})\s*(?P<unit>s|ms|us|bytes|%)?\s*$")


@dataclass(frozen=True)
class Summary:
    """A tool's summary of one timing loop, in milliseconds; ``None`` where the tool does not say."""

    count: int
    mean_ms: float
    min_ms: float
    max_ms: float
    std_ms: float | None = None
    median_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None

    def latency_stats(self) -> LatencyStats:
        """The statistics a local measurement records, with the missing ones approximated as the module says."""
        std = self.std_ms or 0.0
        return LatencyStats(
            median_ms=self.median_ms if self.median_ms is not None else self.mean_ms,
            mean_ms=self.mean_ms,
            std_ms=std,
            min_ms=self.min_ms,
            max_ms=self.max_ms,
            p90_ms=self.p90_ms if self.p90_ms is not None else self.max_ms,
            p99_ms=self.p99_ms if self.p99_ms is not None else self.max_ms,
            mad_ms=0.6745 * std,
            cv=std / self.mean_ms if self.mean_ms > 0 else 0.0,
            runs=self.count,
        )


@dataclass(frozen=True)
class BenchmarkModelReport:
    warmup: Summary | None
    timed: Summary


def _tail(text: str, lines: int = 5) -> str:
    return " | ".join(text.strip().splitlines()[-lines:]) or "(no output)"


def parse_benchmark_model(text: str) -> BenchmarkModelReport:
    """The warm-up and timed loops of ``benchmark_model`` output; the last stat line is the timed loop."""
    loops = []
    for line in text.splitlines():
        match = _TFLITE_STAT.search(line)
        if match is None:
            continue
        curr = float(match["curr"]) / 1e3
        if match["min"] is None:  # "count=N curr=X(all same)" or a single run
            loops.append(Summary(int(match["count"]), curr, curr, curr, 0.0))
        else:
            loops.append(
                Summary(
                    count=int(match["count"]),
                    mean_ms=float(match["avg"]) / 1e3,
                    min_ms=float(match["min"]) / 1e3,
                    max_ms=float(match["max"]) / 1e3,
                    std_ms=float(match["std"]) / 1e3,
                )
            )
    if not loops or loops[-1].count < 1:
        raise RemoteError(f"benchmark_model printed no timing statistics: {_tail(text)}")
    return BenchmarkModelReport(loops[-2] if len(loops) > 1 else None, loops[-1])


def _perf_values(text: str) -> dict[str, float]:
    values = {}
    for line in text.splitlines():
        match = _PERF_LINE.match(line.strip())
        if match:
            scale = {"s": 1e3, "ms": 1.0, "us": 1e-3}.get(match["unit"] or "", 1.0)
            values[match["key"].strip().lower()] = float(match["value"]) * scale
    return values


def parse_perf_test_summary(text: str) -> Summary:
    """``onnxruntime_perf_test``'s printed summary (latencies in ms)."""
    v = _perf_values(text)
    count = v.get("total inference requests") or v.get("runs")
    mean = v.get("average inference time cost")
    if not count or mean is None or "min latency" not in v or "max latency" not in v:
        raise RemoteError(f"onnxruntime_perf_test printed no latency summary: {_tail(text)}")
    return Summary(
        count=int(count),
        mean_ms=mean,
        min_ms=v["min latency"],
        max_ms=v["max latency"],
        median_ms=v.get("p50 latency"),
        p90_ms=v.get("p90 latency"),
        p99_ms=v.get("p99 latency"),
    )


def parse_perf_test_times(csv_text: str) -> np.ndarray:
    """Per-run times (int64 ns) from ``onnxruntime_perf_test``'s result file; its trailing summary is skipped."""
    times = []
    for line in csv_text.splitlines():
        fields = line.rsplit(",", 4)
        if len(fields) != 5:
            continue
        try:
            seconds = float(fields[1])
            int(fields[4])
        except ValueError:
            continue
        times.append(round(seconds * 1e9))
    if not times:
        raise RemoteError(f"onnxruntime_perf_test wrote no per-run times: {_tail(csv_text)}")
    return np.asarray(times, dtype=np.int64)


def parse_stub(text: str, python: str = "python3") -> dict[str, Any]:
    """The JSON the stub printed after ``RESULT_MARKER``; its error if it reported one. A stub that could not
    start because ``python`` lacks a module (numpy, on a bare board) is said so in one line, not as a traceback."""
    for line in reversed(text.splitlines()):
        if line.startswith(RESULT_MARKER):
            payload: dict[str, Any] = json.loads(line[len(RESULT_MARKER) :])
            if "error" in payload:
                raise RemoteError(f"on the device: {payload['error']}")
            return payload
    missing = re.search(r"ModuleNotFoundError: No module named '([\w.]+)'", text)
    if missing:
        module = missing.group(1).split(".")[0]
        raise RemoteError(
            f"{python} on the device has no {module}, which the latbench stub needs beside the engine: install it "
            f"there ({python} -m pip install {module}), or give --remote-command the Python of a virtualenv that has "
            "it (see docs/remote.md, 'What the device needs')"
        )
    raise RemoteError(f"the latbench stub printed no result: {_tail(text)}")
