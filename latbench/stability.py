"""How many results were unstable and why, in plain words: the one text every place that shows or uses results
prints, so a user never reads a figure built on unstable timings without being told.

It reads result-row columns only (``stable``, ``flags``, ``latency_ms``, ``env_load_1m_before``,
``env_cores_logical``), so it works on a results file, a collector export or a dataset build alike. Standard
library only.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping

REASONS = {
    "high_cv": "high variation between runs",
    "shifted": "the model's own runs changed speed while timed",
    "drift": "the reference model's speed drifted",
    "load_rose": "the load rose while timing",
    "frequency_changed": "the CPU frequency changed",
    "governor_changed": "the frequency governor changed",
}
"""The stability problems a result's ``flags`` can hold, as the user reads them."""

NOTES = {
    "waited_idle": "waited for other programs to calm down before timing",
    "still_busy": "waited the full --wait-idle time and the machine was still busy",
}
"""Flags that do not make a result unstable, as the user reads them."""

ADVICE = "Re-measure them when the device is idle."
"""What ``summary`` advises by default: true wherever results are shown, however they were measured; a command
that can do more about it says so instead (``latbench measure`` without ``--wait-idle``: use it)."""


TINY_MS = 0.1
"""Below this median a run is short enough that the timer and the operating system's own interruptions (ticks,
interrupts, a few to tens of microseconds each) are a large share of it, however idle the machine."""

TINY = (
    "under 0.1 ms a run, where timer and OS jitter (interrupts, scheduler ticks of microseconds to tens of "
    "microseconds) is a large share of each run whatever the load"
)
TINY_ADVICE = (
    "An idle machine will not change that: time more work per run (a larger batch) or accept more spread "
    "(--cv-threshold)."
)


def flags_of(row: Mapping[str, object]) -> list[str]:
    """A row's ``flags``: a list (collector rows) or comma-separated text (results files)."""
    flags = row.get("flags") or ""
    items = flags if isinstance(flags, list) else str(flags).split(",")
    return [str(f).strip() for f in items if str(f).strip()]


def words(row: Mapping[str, object]) -> list[str]:
    """A row's flags in plain words; a flag without words stays as it is."""
    return [REASONS.get(f, NOTES.get(f, f)) for f in flags_of(row)]


def is_unstable(row: Mapping[str, object]) -> bool:
    """A row the stability checks gave up on (``stable`` false); rows without the column count as stable."""
    return row.get("stable") is False or str(row.get("stable")).lower() == "false"


def stable_rows(rows: Iterable[Mapping[str, object]]) -> list[Mapping[str, object]]:
    return [r for r in rows if not is_unstable(r)]


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if number == number else None


def looks_busy(load: float, cores: int) -> bool:
    """Whether a 1-minute load average means other work competed for the cores: three quarters of them taken."""
    return load >= 0.75 * cores


def summary(rows: Iterable[Mapping[str, object]], advice: str = ADVICE) -> str | None:
    """E.g. "120 of 120 results are unstable (high variation between runs): the machine was busy (load average
    7.2 on 2 cores). Re-measure them when the device is idle." (``advice`` last); also said when results were
    stable but timed while the machine stayed busy past the --wait-idle bound; None when every result is stable
    and timed quiet. Where every unstable result is a sub-``TINY_MS`` model's spread, the cause named is the timer
    and the OS, and ``advice`` (to wait for an idle machine) is left out: it would not help."""
    rows = list(rows)
    unstable = [r for r in rows if is_unstable(r)]
    still_busy = sum(1 for r in rows if "still_busy" in flags_of(r))
    if not unstable:
        if not still_busy:
            return None
        # stable, yet timed beside other work: comparable with each other, not necessarily with a quiet machine
        return (
            f"{still_busy} of {len(rows)} results {NOTES['still_busy']}; "
            "their runs varied little, so they count as stable, but other programs shared the machine while "
            "they were timed. Re-run when it is idle for figures comparable with a quiet device."
        )
    reasons = Counter(f for r in unstable for f in flags_of(r) if f in REASONS)
    if len(reasons) == 1:
        why = f" ({REASONS[next(iter(reasons))]})"
    elif reasons:
        why = " (" + ", ".join(f"{n} {REASONS[f]}" for f, n in reasons.most_common()) + ")"
    else:
        why = ""
    text = f"{len(unstable)} of {len(rows)} results are unstable{why}"
    loads = [x for r in unstable if (x := _number(r.get("env_load_1m_before"))) is not None]
    cores = next((int(x) for r in unstable if (x := _number(r.get("env_cores_logical")))), None)
    tiny = sum(1 for r in unstable if "high_cv" in flags_of(r) and 0 < (_number(r.get("latency_ms")) or 0) < TINY_MS)
    if tiny == len(unstable):  # the load is beside the point, and so is advice to wait for an idle machine
        text += f": {'it takes' if tiny == 1 else 'each takes'} {TINY}"
        if still_busy:
            text += f"; {still_busy} {NOTES['still_busy']}"
        return f"{text}. {TINY_ADVICE}"
    if loads and cores:
        load = statistics.median(loads)
        if looks_busy(load, cores):
            text += f": the machine was busy (load average {load:.1f} on {cores} cores)"
        else:  # a load average is the word of one minute on this OS alone: a noisy VM neighbour never shows in it
            text += (
                f": the machine looked idle (load average {load:.1f} on {cores} cores), but a load average "
                "misses bursts under a minute and other virtual machines on the host"
            )
    if tiny:
        text += f"; {tiny} of them take {TINY}"
    if still_busy:
        text += f"; {still_busy} {NOTES['still_busy']}"
    return f"{text}. {advice}"


def left_out(count: int, what: str = "results") -> str:
    """The line a step that used stable results only prints about those it skipped."""
    noun = what[:-1] if count == 1 and what.endswith("s") else what
    return f"left out {count} unstable {noun} (use --include-unstable to keep them)"
