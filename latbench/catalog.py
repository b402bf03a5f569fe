"""The datasets and predictors the collector's dashboard shows, handed to the collector when it starts.

Datasets and predictors are built from a collector's results, so ``latbench.collectors`` imports neither and
neither imports it; this module, above both, supplies what the dashboard's ``Catalog`` asks for. Predictors are
loaded with ``latbench.predictor`` only when a model file is placed, since torch is heavy and optional for a
collector.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from latbench.collectors.adaptive import AcquiredStep
from latbench.datasets import cards, registry
from latbench.datasets.build import build_from_campaign_rows
from latbench.datasets.errors import DatasetError, DatasetNotFound
from latbench.datasets.model import new_provenance
from latbench.errors import Conflict, NotFound

if TYPE_CHECKING:
    from latbench.predictor import Predictor
    from latbench.predictor.adaptive import Acquisition
    from latbench.protocol import AdaptivePlan


class DatasetCatalog:
    """The datasets of this host's registry (``$LATBENCH_HOME/datasets``) and the built-in ones."""

    def campaign_card(self, campaign_id: str, campaign_name: str | None, rows: list[dict[str, Any]]) -> dict[str, Any]:
        provenance = new_provenance("build", campaign=campaign_id, campaign_name=campaign_name, results=len(rows))
        try:
            ds = build_from_campaign_rows(rows, campaign_id, provenance)
        except DatasetError as exc:
            return {"card": None, "reason": str(exc)}
        return {"card": cards.describe(ds), "reason": None}

    def datasets(self) -> dict[str, Any]:
        try:
            return {"datasets": [s.as_dict() for s in registry.list_datasets()], "reason": None}
        except DatasetError as exc:
            return {"datasets": [], "reason": str(exc)}

    def dataset_card(self, name: str) -> dict[str, Any]:
        try:
            registry.check_name(name)
        except DatasetError as exc:
            raise NotFound(str(exc)) from None
        try:
            return cards.describe(registry.load(name))
        except DatasetNotFound as exc:
            raise NotFound(str(exc)) from None
        except DatasetError as exc:  # stored but unreadable (damaged or of another format)
            raise Conflict(str(exc)) from None

    def load_predictor(self, path: Path) -> Predictor:
        from latbench.predictor import Predictor  # lazily: torch is needed only once a model is placed

        return Predictor.load(path)


class PredictorAcquirer:
    """The adaptive campaigns' acquisition (``latbench.predictor.adaptive``), one per space and batch size, built
    on first use (and again when a device measured an architecture outside its candidates)."""

    def __init__(self) -> None:
        self._acquisitions: dict[tuple[str, int], Acquisition] = {}

    def step(
        self, space: str, device: str, archs: Sequence[str], latency_ms: Sequence[float], exclude: Sequence[str],
        plan: AdaptivePlan, budget: int, setup: Mapping[str, Any] | None = None, fingerprint: str | None = None,
    ) -> AcquiredStep:  # fmt: skip
        from latbench.predictor import adaptive, setups

        key = (space, plan.batch)
        acquisition = self._acquisitions.get(key)
        if acquisition is None or any(a not in acquisition.position for a in archs):
            acquisition = self._acquisitions[key] = adaptive.acquisition_for(space, plan.batch, archs)
        step = acquisition.step(device, archs, latency_ms, plan.target_srcc, budget, exclude)
        if setup:
            setups.record(step.model, setups.MeasurementSetup.from_info(dict(setup)))
        if fingerprint:  # so `latbench search --verify local` measures its finalists only on that hardware
            setups.record_machine(step.model, setups.MeasuredOn(device, "an adaptive campaign", device_id=fingerprint))
        estimate = step.estimate
        return AcquiredStep(estimate.srcc, estimate.srcc_std, step.model, step.next, step.stop, estimate.checks,
                            step.caveat)  # fmt: skip
