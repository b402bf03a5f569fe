"""This process's event counters, and the Prometheus text format (version 0.0.4) that ``GET /metrics`` answers in.

Events are counted where they happen (a lease granted, a result stored) by the process that served them, so the
counters start at zero with each process and a collector with ``--workers N`` has N sets: every series of
``this_process`` carries a ``process`` label (its pid) so that the sets stay apart when scrapes reach different
processes behind one port; queries ``sum`` them. They live at module level, one set per process like the
store's engine, and may be counted from any thread. This module imports nothing of the collector, so that
``leasing`` and ``ingest`` can count into it.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from latbench.protocol import AckStatus

Kind = Literal["counter", "gauge", "histogram"]
LabelSet = tuple[tuple[str, str], ...]
"""A series' labels as ``((name, value), ...)``."""
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DURATION_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
"""Request durations: a heartbeat takes a few milliseconds, a large push or export seconds."""
_STARTED = time.time()


@dataclass(frozen=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class Family:
    """One metric: its name, type and help, and its samples (a histogram's ``_bucket``, ``_sum`` and ``_count``)."""

    name: str
    kind: Kind
    help: str
    samples: Sequence[Sample]


def gauge(name: str, help: str, values: Mapping[LabelSet, float] | float) -> Family:
    """A gauge of one value, or of one value per label set."""
    found = values if isinstance(values, Mapping) else {(): values}
    return Family(name, "gauge", help, [Sample(name, dict(labels), v) for labels, v in sorted(found.items())])


class Counter:
    """A monotonic count per combination of ``labels``' values; those in ``known`` (and an unlabelled counter's
    one series) are shown from zero on, so that a query sees them before their first event."""

    def __init__(self, name: str, help: str, labels: Sequence[str] = (), known: Iterable[str] = ()) -> None:
        self.name, self.help, self.labels = name, help, tuple(labels)
        self._values: dict[tuple[str, ...], float] = {(value,): 0.0 for value in known} if labels else {(): 0.0}
        self._lock = threading.Lock()

    def inc(self, amount: float = 1.0, *values: str) -> None:
        with self._lock:
            self._values[values] = self._values.get(values, 0.0) + amount

    def count(self, values: Iterable[str]) -> None:
        """One event for each of ``values``, of a counter with one label."""
        for value in values:
            self.inc(1.0, value)

    def family(self, process: Mapping[str, str]) -> Family:
        with self._lock:
            values = sorted(self._values.items())
        return Family(self.name, "counter", self.help,
                      [Sample(self.name, {**dict(zip(self.labels, k)), **process}, v) for k, v in values])  # fmt: skip


@dataclass
class _Observed:
    counts: list[int]
    """Per bucket, then past the last one."""
    total: float = 0.0


class Histogram:
    """Observations counted into cumulative ``buckets`` per combination of ``labels``' values."""

    def __init__(self, name: str, help: str, labels: Sequence[str], buckets: Sequence[float]) -> None:
        self.name, self.help, self.labels, self.buckets = name, help, tuple(labels), tuple(buckets)
        self._values: dict[tuple[str, ...], _Observed] = {}
        self._lock = threading.Lock()

    def observe(self, value: float, *values: str) -> None:
        with self._lock:
            observed = self._values.setdefault(values, _Observed([0] * (len(self.buckets) + 1)))
            observed.counts[next((i for i, edge in enumerate(self.buckets) if value <= edge), len(self.buckets))] += 1
            observed.total += value

    def family(self, process: Mapping[str, str]) -> Family:
        with self._lock:
            values = [(key, _Observed(list(o.counts), o.total)) for key, o in sorted(self._values.items())]
        samples = []
        for key, observed in values:
            labels = {**dict(zip(self.labels, key)), **process}
            running = 0
            for edge, count in zip((*self.buckets, math.inf), observed.counts):
                running += count
                samples.append(Sample(f"{self.name}_bucket", {**labels, "le": _number(edge)}, running))
            samples += [
                Sample(f"{self.name}_sum", labels, observed.total),
                Sample(f"{self.name}_count", labels, running),
            ]
        return Family(self.name, "histogram", self.help, samples)


HTTP_REQUESTS = Counter(
    "latbench_http_requests_total", "HTTP requests answered, by route template, method and status class.",
    ("route", "method", "status_class"),
)  # fmt: skip
HTTP_DURATION = Histogram(
    "latbench_http_request_duration_seconds", "Time from a request's arrival to the end of its answer.",
    ("route", "method"), DURATION_BUCKETS_S,
)  # fmt: skip
LEASES_GRANTED = Counter("latbench_leases_granted_total", "Jobs leased to agents.")
LEASE_EXPIRIES = Counter(
    "latbench_lease_expiries_total",
    "Expired leases whose jobs a later lease request took back (each counts against its job's failure limit).",
)
LEASES_RELEASED = Counter(
    "latbench_leases_released_total", "Leases returned to the queue by their agent, or by a revoke or re-enrollment."
)
RESULTS = Counter(
    "latbench_results_received_total",
    "Results in accepted pushes, by outcome: stored, duplicate, dropped, requeued or failed (an error report).",
    ("outcome",),
    get_args(AckStatus),
)
RESULT_BATCHES_REJECTED = Counter(
    "latbench_result_batches_rejected_total", "Result pushes refused whole with a 4xx (nothing of them stored)."
)
ENROLLMENTS = Counter("latbench_enrollments_total", "Agents enrolled or enrolled again.")
AUTH_FAILURES = Counter(
    "latbench_auth_failures_total",
    "Requests refused for their token: unauthenticated (401: missing, unknown, revoked or expired) or "
    "forbidden (403: a token of another kind, or one that may not do this).",
    ("reason",),
    ("unauthenticated", "forbidden"),
)
COUNTERS = (HTTP_REQUESTS, HTTP_DURATION, LEASES_GRANTED, LEASE_EXPIRIES, LEASES_RELEASED, RESULTS,
            RESULT_BATCHES_REJECTED, ENROLLMENTS, AUTH_FAILURES)  # fmt: skip


def this_process() -> list[Family]:
    """Every counter of this process and when it started, each series labelled with its ``process``."""
    process = {"process": str(os.getpid())}
    started = Family("latbench_process_start_time_seconds", "gauge", "When this process started (Unix time).",
                     [Sample("latbench_process_start_time_seconds", process, _STARTED)])  # fmt: skip
    return [started, *(counter.family(process) for counter in COUNTERS)]


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if float(value).is_integer() and abs(value) < 2**53 else repr(float(value))


def _escaped(text: str, quote: bool) -> str:
    text = text.replace("\\", "\\\\").replace("\n", "\\n")
    return text.replace('"', '\\"') if quote else text


def exposition(families: Iterable[Family]) -> str:
    """``families`` in the Prometheus text format 0.0.4: ``# HELP`` and ``# TYPE`` lines, then one line per sample."""
    lines = []
    for family in families:
        lines += [f"# HELP {family.name} {_escaped(family.help, False)}", f"# TYPE {family.name} {family.kind}"]
        for sample in family.samples:
            labels = ",".join(f'{k}="{_escaped(v, True)}"' for k, v in sample.labels.items())
            lines.append(f"{sample.name}{{{labels}}} {_number(sample.value)}" if labels
                         else f"{sample.name} {_number(sample.value)}")  # fmt: skip
    return "\n".join(lines) + "\n"
