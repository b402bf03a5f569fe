"""A real competing process for the tests of waiting for a quiet machine: a child that busy-loops, and a reading of
the cores it keeps busy (a reading of the whole machine would see the other tests' load, not the child)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable

import psutil

LIMIT_CORES = 0.02
"""Cores the child may keep busy and still count as gone: a fixed figure, not a share of the cores (5% of 32 cores is
more than one busy loop takes); a busy loop alive for a whole reading takes far more, even on a loaded machine."""


def threshold() -> float:
    """``QuietPolicy.threshold`` (a share of this machine's cores) that means ``LIMIT_CORES`` on any core count."""
    return LIMIT_CORES / (os.cpu_count() or 1)


def busy_child(seconds: float | None) -> subprocess.Popen[bytes]:
    """A CPU-bound child process, returned once it is busy: for ``seconds`` from then, or until killed."""
    until = "float('inf')" if seconds is None else f"time.monotonic() + {seconds}"
    loop = f"import time\nend = {until}\nprint('busy', flush=True)\nwhile time.monotonic() < end: pass\n"
    child = subprocess.Popen([sys.executable, "-c", loop], stdout=subprocess.PIPE)
    assert child.stdout is not None and child.stdout.readline() == b"busy\n"
    return child


def cores_of(child: subprocess.Popen[bytes]) -> Callable[[float], float]:
    """A ``QuietPolicy.reading`` of the cores ``child`` keeps busy; 0 once it has exited, also where it exited
    during the interval (its last few milliseconds of work are not a competitor still running)."""
    proc = psutil.Process(child.pid)

    def reading(interval_s: float) -> float:
        if child.poll() is not None:
            return 0.0
        try:
            before = sum(proc.cpu_times()[:2])
            time.sleep(interval_s)
            used = sum(proc.cpu_times()[:2]) - before
        except psutil.NoSuchProcess:
            return 0.0
        return 0.0 if child.poll() is not None else used / interval_s

    return reading
