"""What every request handler shares, fixed when the service starts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from latbench.agents.downloads import MAX_CACHE_BYTES
from latbench.collectors.db import Store, utcnow
from latbench.protocol import MAX_MODEL_BYTES


def _nothing() -> None:
    return None


class LatencyModel(Protocol):
    """A loaded predictor, as the dashboard uses one."""

    @property
    def space(self) -> str: ...

    def predict(self, archs: Sequence[str]) -> Any: ...


class Catalog(Protocol):
    """The datasets and predictors the dashboard shows. They live in packages that build on the collector's
    results, so the collector does not import them: whoever starts it passes them in (``latbench.catalog``)."""

    def campaign_card(self, campaign_id: str, campaign_name: str | None, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """``{"card", "reason"}``: the card of the dataset built from a campaign's result rows, or why none."""
        ...

    def datasets(self) -> dict[str, Any]:
        """``{"datasets", "reason"}``: a summary of every dataset the host holds, or why none can be listed."""
        ...

    def dataset_card(self, name: str) -> dict[str, Any]:
        """One dataset's card; ``NotFound`` for a name it does not hold, ``Conflict`` for one it cannot read."""
        ...

    def load_predictor(self, path: Path) -> LatencyModel:
        """The predictor in a model file placed for a device."""
        ...


@dataclass(frozen=True)
class Collector:
    """The store, where built artifacts live, the catalog, lease timing, the clock, and how to tell the builder
    about work.

    ``retry_after_s`` is how long an agent that got no job waits before asking again; ``models_dir`` holds the
    predictors placed for devices (``<device name>.pt``) that the dashboard compares measurements with;
    ``max_model_bytes`` is the largest model file an admin may upload; ``artifact_cache_bytes`` bounds
    ``artifacts_dir``, a cache of the store's files (``blobs.evict``).
    """

    store: Store
    artifacts_dir: Path
    catalog: Catalog
    lease_ttl_s: float = 60.0
    retry_after_s: float = 2.0
    clock: Callable[[], datetime] = utcnow
    wake_builder: Callable[[], None] = _nothing
    models_dir: Path | None = None
    max_model_bytes: int = MAX_MODEL_BYTES
    artifact_cache_bytes: int = MAX_CACHE_BYTES
