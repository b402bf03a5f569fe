"""The source devices' measured latencies, looked up per architecture for the members that read them.

The ridge, NNLS and ensemble predictors use what the source devices measured on each architecture. A predictor
keeps that table with it: embedded in its file, or, for the built-in datasets shipped with latbench, as a
reference to the dataset checked by content hash (so the shipped model stays small).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from latbench import datasets
from latbench.predictor.errors import ModelFileError
from latbench.predictor.features import codes


@dataclass
class SourceTable:
    """``latency[a, d]``: log milliseconds of architecture row ``a`` (``arch_codes[a]``) on source device ``d``."""

    space: str
    devices: tuple[str, ...]
    arch_codes: np.ndarray
    latency: np.ndarray
    reference: dict[str, str] | None = None
    _rows: dict[bytes, int] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dataset(cls, ds: datasets.Dataset, devices: tuple[str, ...]) -> SourceTable:
        view = ds.select(list(devices))
        with np.errstate(divide="ignore", invalid="ignore"):
            latency = np.log(view.latency.T).astype(np.float32)
        reference = None
        if ds.builtin:
            reference = {"dataset": ds.name, "sha256": view.content_sha256()}
        return cls(ds.space, devices, codes(ds.space, ds.archs), latency, reference)

    def lookup(self, arch_codes: np.ndarray) -> np.ndarray:
        """Rows for ``arch_codes`` (n, D) float64; NaN where the table lacks an architecture or device value."""
        if not self._rows:
            self._rows = {row.tobytes(): i for i, row in enumerate(self.arch_codes.astype(np.int64))}
        index = np.array([self._rows.get(row.tobytes(), -1) for row in arch_codes.astype(np.int64)], dtype=np.int64)
        out = np.full((len(index), len(self.devices)), np.nan)
        found = index >= 0
        out[found] = self.latency[index[found]]
        return out

    def to_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(metadata, tensors) for a model file; a built-in table is saved as its reference only."""
        import torch

        meta: dict[str, Any] = {"space": self.space, "devices": list(self.devices), "reference": self.reference}
        if self.reference is not None:
            return meta, {}
        return meta, {
            "sources.codes": torch.from_numpy(self.arch_codes.astype(np.int16)),
            "sources.latency": torch.from_numpy(self.latency),
        }

    @classmethod
    def from_state(cls, meta: dict[str, Any], tensors: dict[str, Any]) -> SourceTable:
        devices = tuple(meta["devices"])
        reference = meta.get("reference")
        if reference is None:
            return cls(
                meta["space"],
                devices,
                tensors["sources.codes"].numpy().astype(np.int64),
                tensors["sources.latency"].numpy(),
            )
        ds = datasets.load(reference["dataset"])
        table = cls.from_dataset(ds, devices)
        if table.reference != reference:
            raise ModelFileError(
                f"the model was trained on built-in dataset {reference['dataset']!r} with other values than this "
                "latbench ships; retrain it"
            )
        return table
