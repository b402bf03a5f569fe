"""How a transferred model's samples were measured, kept in its file so that whoever measures against its
predictions (``latbench search --verify``) measures the same way.

A prediction is a latency at one measurement setup: batch 8 runs several times longer than batch 1, and int8 or
another runtime changes it again. ``latbench predictor transfer`` records the target device's setup, as far as its
results file or dataset says it (``DeviceMeta``: a built-in table may state the batch only); a field left ``None``
is unknown. Model files from before this record none (``recorded`` gives None).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from latbench.datasets import DeviceMeta
    from latbench.predictor.predictor import Predictor

INFO_KEY = "measured_with"
"""``Predictor.info`` key of the target's setup: the known fields of a ``MeasurementSetup``."""


@dataclass(frozen=True)
class MeasurementSetup:
    """A measurement setup: runtime and provider (``latbench runtimes``), precision (``fp32``, ``int8``), batch,
    intra-op threads, input resolution and output classes; ``None`` where unknown or not given."""

    runtime: str | None = None
    provider: str | None = None
    precision: str | None = None
    batch: int | None = None
    threads: int | None = None
    resolution: int | None = None
    classes: int | None = None

    @classmethod
    def of_device(cls, device: DeviceMeta) -> MeasurementSetup:
        """What a dataset's device column says of how it was measured."""
        precision = device.settings.get("precision")
        return cls(
            runtime=device.runtime,
            provider=device.provider,
            precision=str(precision) if precision else None,
            batch=device.batch,
            threads=device.threads,
            resolution=device.resolution,
            classes=device.classes,
        )

    @classmethod
    def from_info(cls, info: dict[str, Any]) -> MeasurementSetup:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in info.items() if k in names})

    def as_info(self) -> dict[str, Any]:
        """The known fields only."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    def describe(self) -> str:
        """``runtime onnxruntime, batch 8``: the known fields, for messages."""
        return ", ".join(f"{name} {value}" for name, value in self.as_info().items()) or "nothing"


def record(model: Predictor, setup: MeasurementSetup) -> None:
    """Keep ``setup`` (its known fields) in ``model``'s info, saved with it."""
    model.info[INFO_KEY] = setup.as_info()


def recorded(model: Predictor) -> MeasurementSetup | None:
    """The setup recorded with ``model``; None for a model that records none (transferred before the record, or
    by the API without one)."""
    info = model.info.get(INFO_KEY)
    return None if info is None else MeasurementSetup.from_info(info)
