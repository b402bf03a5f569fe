"""The peak resident memory of this process over a stretch of work (the timed runs), not over its whole life.

Linux keeps a resettable high-water mark (``VmHWM``, reset by writing ``5`` to ``/proc/self/clear_refs``), so the
peak of one measurement is not the peak of an earlier, larger model. Elsewhere the lifetime peak of
``getrusage`` is the best there is: an upper bound, at least the resident size now.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_HWM = re.compile(rb"VmHWM:\s+(\d+)\s+kB")


def reset_peak() -> bool:
    """Restart the high-water mark at the resident size now; False where the platform cannot."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mb() -> float | None:
    """The resident-memory peak since the last ``reset_peak`` (Linux) or since the process started, in MiB."""
    try:
        match = _HWM.search(_STATUS.read_bytes())
    except OSError:
        match = None
    if match:
        return round(int(match.group(1)) / 1024, 3)
    if resource is None:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1 << 20) if sys.platform == "darwin" else peak / 1024, 3)  # bytes on macOS, KiB elsewhere
