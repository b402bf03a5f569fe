"""A transfer's target samples: a device's measured architectures, from a results file of ``latbench measure``
or a dataset's device column, with what is known of how and where they were measured (``setups``).

``latbench predictor transfer`` reads them through here, so the Python API takes the same samples the command does:

```python
from latbench.predictor import out_of_fold, setups, targets

samples = targets.from_results("results.csv", "my-pi")      # every (stable) result
model = out_of_fold.transfer_and_validate(pre, "my-pi", samples.archs, samples.latency_ms)
samples.record(model)                                       # setups.recorded, setups.measured_on read it back
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from latbench import datasets, stability
from latbench.predictor.errors import PredictorError, UnknownDevice
from latbench.predictor.samplers import sample_indices
from latbench.predictor.setups import MeasuredOn, MeasurementSetup, record, record_machine

if TYPE_CHECKING:
    from latbench.predictor.predictor import Predictor


@dataclass(frozen=True)
class TargetSamples:
    """The samples of ``device``: ``archs`` measured ``latency_ms``, at ``setup``, on the machine ``where`` says;
    ``warnings`` (results the stability checks doubt, fewer samples than asked) and ``notes`` (results left out)
    are for the user to read before trusting a model made of them."""

    space: str
    device: datasets.DeviceMeta
    archs: list[str]
    latency_ms: np.ndarray
    where: MeasuredOn
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def setup(self) -> MeasurementSetup:
        return MeasurementSetup.of_device(self.device)

    def record(self, model: Predictor) -> None:
        """Keep in ``model`` how (``setups.record``) and where (``setups.record_machine``) these were measured."""
        record(model, self.setup)
        record_machine(model, self.where)


def from_results(path: str | Path, device: str, include_unstable: bool = False) -> TargetSamples:
    """Every result of ``path`` (stable ones only, unless ``include_unstable``), as ``device``'s samples; the
    file's device is renamed ``device`` (``datasets.build_from_results``)."""
    path = Path(path)
    try:
        ds = datasets.build_from_results(path, device=device, include_unstable=include_unstable)
    except datasets.DatasetError as exc:
        raise PredictorError(f"cannot transfer to {device} from {path}: {exc}") from None
    if device not in ds.device_names:
        raise UnknownDevice(f"{path} has no device {device!r}; it has: {', '.join(ds.device_names)}")
    meta = ds.device(device)
    latency = ds.vector(device)
    rows = np.flatnonzero(~np.isnan(latency))
    warnings = [meta.quality["stability"]] if meta.quality.get("stability") else []
    left_out = meta.quality.get("unstable_left_out")
    notes = [stability.left_out(left_out)] if left_out else []
    return TargetSamples(
        ds.space, meta, [ds.archs[i] for i in rows], latency[rows], MeasuredOn.of_device(meta, path.name),
        warnings, notes,
    )  # fmt: skip


def from_dataset(name: str, device: str, samples: int, sampler: str = "random", seed: int = 0) -> TargetSamples:
    """``samples`` of the architectures dataset ``name`` measured on ``device``, picked by ``sampler``
    (``samplers.sample_indices``); all of them, with a warning, where it measured fewer."""
    ds = datasets.load(name)
    if device not in ds.device_names:
        raise UnknownDevice(f"dataset {name!r} has no device {device!r}; it has: {', '.join(ds.device_names)}")
    meta = ds.device(device)
    latency = ds.vector(device)
    measured = np.flatnonzero(~np.isnan(latency))
    warnings = []
    if len(measured) < samples:
        warnings.append(
            f"dataset {name!r} holds {len(measured)} measurement(s) of {device}, fewer than the {samples} asked: "
            f"using all {len(measured)}"
        )
    archs = [ds.archs[i] for i in measured]
    rows = measured[sample_indices(ds.space, archs, min(samples, len(measured)), sampler, seed)]
    where = MeasuredOn.of_device(meta, name, published=ds.builtin)
    return TargetSamples(ds.space, meta, [ds.archs[i] for i in rows], latency[rows], where, warnings)
