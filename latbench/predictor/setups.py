"""How a transferred model's samples were measured, kept in its file so that whoever measures against its
predictions (``latbench search --verify``) measures the same way.

A prediction is a latency at one measurement setup: batch 8 runs several times longer than batch 1, and int8 or
another runtime changes it again. ``latbench predictor transfer`` records the target device's setup, as far as its
results file or dataset says it (``DeviceMeta``: a built-in table may state the batch only); a field left ``None``
is unknown. Model files from before this record none (``recorded`` gives None).

It also records where the samples were measured (``MeasuredOn``): the hardware fingerprint a results file
carries (``device_id``, ``MachineInfo.fingerprint``), or the published dataset a device's column comes from, so
that ``is_this_machine`` can tell whether measuring here checks the model or another device altogether.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from latbench.datasets import DeviceMeta
    from latbench.predictor.predictor import Predictor

INFO_KEY = "measured_with"
"""``Predictor.info`` key of the target's setup: the known fields of a ``MeasurementSetup``."""
MACHINE_KEY = "measured_on"
"""``Predictor.info`` key of where the target's samples were measured: a ``MeasuredOn`` as a dict."""


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


@dataclass(frozen=True)
class MeasuredOn:
    """Where a transfer's samples were measured: ``device`` of the results file or dataset ``origin``; its hardware
    fingerprint (``device_id``) and host name where the results record them; ``published`` for a built-in
    dataset's device, which is a machine of the dataset's authors, never the one at hand."""

    device: str
    origin: str
    device_id: str | None = None
    hostname: str | None = None
    published: bool = False

    @classmethod
    def of_device(cls, device: DeviceMeta, origin: str, published: bool = False) -> MeasuredOn:
        """What a results file's or dataset's device column says of its machine (``origin``: the file or dataset
        name, for messages)."""
        device_id = device.settings.get("device_id")
        hostname = device.environment.get("hostname")
        return cls(
            device=device.name,
            origin=origin,
            device_id=str(device_id) if device_id else None,
            hostname=hostname if isinstance(hostname, str) else None,
            published=published,
        )

    def describe(self) -> str:
        """``my-pi of results.csv (fingerprint 3f2a...)``: for messages."""
        where = f"{self.device} of {'published dataset ' if self.published else ''}{self.origin}"
        return where + (f" (fingerprint {self.device_id})" if self.device_id else "")


def record_machine(model: Predictor, where: MeasuredOn) -> None:
    """Keep ``where`` in ``model``'s info, saved with it."""
    model.info[MACHINE_KEY] = asdict(where)


def measured_on(info: Mapping[str, Any]) -> MeasuredOn | None:
    """Where the samples of the model whose ``info`` this is were measured; None for a model that records no
    place (transferred before the record, or by the API without one)."""
    record = info.get(MACHINE_KEY)
    if not isinstance(record, Mapping):
        return None
    names = {f.name for f in fields(MeasuredOn)}
    return MeasuredOn(**{k: v for k, v in record.items() if k in names})


def is_this_machine(info: Mapping[str, Any]) -> bool | None:
    """Whether the model whose ``info`` this is was measured on this machine's hardware: its fingerprint against
    ``machine_info().fingerprint()`` where the samples recorded one, False for a published dataset's device, None
    where it cannot be told (no record, or an imported table that names no machine)."""
    where = measured_on(info)
    if where is None:
        return None
    if where.device_id is not None:
        from latbench.agents.environment import machine_info

        return where.device_id == machine_info().fingerprint()
    return False if where.published else None
