"""Wait for a quiet machine before timing: other programs' CPU use is what makes a busy machine's results unstable.

Re-measuring a busy machine three times in a row only measures the busy machine three times; waiting until the
other programs calm down (bounded, with backoff) gives the attempt a chance, and the result records that it
waited and whether the machine was still busy when the wait ran out.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from latbench.errors import LatbenchError

try:
    import psutil
except ImportError:  # without the agent extra there is no reading of other processes: no waiting either
    psutil = None

_NOT_BUSY = ("idle", "iowait", "guest", "guest_nice")
"""``cpu_times`` fields that are not work (guest time is already counted in user time on Linux)."""


def others_busy(interval_s: float) -> float | None:
    """Cores kept busy over ``interval_s`` by every process but this one (None without psutil)."""
    if psutil is None:
        return None
    me = psutil.Process()

    def busy() -> float:
        times = psutil.cpu_times()
        return sum(getattr(times, f) for f in times._fields if f not in _NOT_BUSY)

    def mine() -> float:
        times = me.cpu_times()
        return float(times.user + times.system)

    total0, mine0, started = busy(), mine(), time.monotonic()
    time.sleep(interval_s)
    total1, mine1, elapsed = busy(), mine(), time.monotonic() - started
    return max(0.0, (total1 - total0) - (mine1 - mine0)) / max(elapsed, 1e-9)


@dataclass(frozen=True)
class Wait:
    """What waiting for quiet did before one attempt: seconds waited, other programs' load (cores) at the end,
    and whether the bound ran out with the machine still busy."""

    waited_s: float
    load: float | None
    still_busy: bool

    def notes(self) -> list[str]:
        """The flags a result carries about this wait (informational: they do not make it unstable)."""
        if self.still_busy:
            return ["still_busy"]
        return ["waited_idle"] if self.waited_s > 0 else []


@dataclass(frozen=True)
class QuietPolicy:
    """Before each attempt, wait while other processes keep more than ``threshold`` of the cores busy: sleep
    ``first_backoff_s``, doubling, for at most ``max_wait_s`` in all, then measure anyway."""

    threshold: float = 0.25
    """Fraction of the machine's cores other processes may keep busy (0.25 on 2 cores: half a core)."""
    max_wait_s: float = 60.0
    first_backoff_s: float = 0.5
    sample_s: float = 0.25
    reading: Callable[[float], float | None] = others_busy
    """Cores busy with other work over an interval; the default reads every other process."""

    def __post_init__(self) -> None:
        if self.threshold < 0 or self.max_wait_s < 0 or self.first_backoff_s <= 0 or self.sample_s <= 0:
            raise ValueError("wait-idle needs threshold >= 0, max_wait_s >= 0 and positive backoff and sample times")

    def wait(self) -> Wait:
        limit = self.threshold * (os.cpu_count() or 1)
        started = time.monotonic()
        delay = self.first_backoff_s
        load = self.reading(self.sample_s)
        waited = 0.0
        while load is not None and load > limit:
            left = self.max_wait_s - (time.monotonic() - started)
            if left <= 0:
                return Wait(round(time.monotonic() - started, 3), round(load, 2), still_busy=True)
            time.sleep(min(delay, left))
            delay *= 2
            load = self.reading(self.sample_s)
            waited = time.monotonic() - started
        return Wait(round(waited, 3), None if load is None else round(load, 2), still_busy=False)


def pin_to_core(core: int) -> None:
    """Run this process, and the threads it starts from now on, on ``core`` only: other programs then compete
    for the timed work's core only where the scheduler puts them there (Linux; elsewhere a clear error)."""
    if not hasattr(os, "sched_setaffinity"):
        raise LatbenchError("--pin-core needs a platform with CPU affinity (Linux); this one has none")
    allowed = sorted(os.sched_getaffinity(0))
    if core not in allowed:
        raise LatbenchError(f"cannot pin to core {core}: this process may run on cores {allowed}")
    os.sched_setaffinity(0, {core})
