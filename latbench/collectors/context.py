"""What every request handler shares, fixed when the service starts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from latbench.collectors.db import Store, utcnow


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Collector:
    """The store, where built artifacts live, lease timing, the clock, and how to tell the builder about work.

    ``retry_after_s`` is how long an agent that got no job waits before asking again; ``models_dir`` holds the
    predictors placed for devices (``<device name>.pt``) that the dashboard compares measurements with.
    """

    store: Store
    artifacts_dir: Path
    lease_ttl_s: float = 60.0
    retry_after_s: float = 2.0
    clock: Callable[[], datetime] = utcnow
    wake_builder: Callable[[], None] = _nothing
    models_dir: Path | None = None
