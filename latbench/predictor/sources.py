"""The source devices' measured latencies, looked up per architecture for the members that read them.

The ridge, NNLS and ensemble predictors use what the source devices measured on each architecture. A predictor
keeps that table with it: embedded in its file, or, for the built-in datasets shipped with latbench, as a
reference to the dataset checked by content hash (so the shipped model stays small).

Source devices may cover different architectures (an imported table with holes, a device measured on a subset).
An architecture that some source device measured gets the others' values imputed (``impute``), so every member
reads every such architecture; one that no source device measured has none, and the members reading sources
leave it to the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from latbench import datasets
from latbench.predictor.errors import ModelFileError
from latbench.predictor.features import codes, cost_features

IMPUTE_ROUNDS = 3
IMPUTE_PENALTY = 1e-3


@dataclass
class SourceTable:
    """``latency[a, d]``: log milliseconds of architecture row ``a`` (``arch_codes[a]``) on source device ``d``."""

    space: str
    devices: tuple[str, ...]
    arch_codes: np.ndarray
    latency: np.ndarray
    reference: dict[str, str] | None = None
    _rows: dict[bytes, int] = field(default_factory=dict, repr=False)
    _filled: np.ndarray | None = field(default=None, repr=False)

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
        if self._filled is None:
            self._filled = impute(self.latency, cost_features(self.space, self.arch_codes))
        out[found] = self._filled[index[found]]
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


def impute(latency: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """``latency`` (archs x devices, log ms, NaN unknown) with the holes of every architecture that some device
    measured filled; rows no device measured stay NaN.

    Each device's column is first fitted on the cost features, then ``IMPUTE_ROUNDS`` times on the other devices'
    (filled) columns beside the cost features, by least squares with a small ridge penalty on its measured rows:
    a device's missing values come from the devices that rank like it.
    """
    values = np.where(np.isfinite(latency), latency, np.nan).astype(np.float64)
    holes = np.isnan(values)
    rows = ~holes.all(axis=1)
    if not holes[rows].any():
        return values
    mean, std = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    z = (values - mean) / std
    c = (costs - costs.mean(axis=0)) / np.where(costs.std(axis=0) > 1e-12, costs.std(axis=0), 1.0)
    filled = z.copy()
    for rounds in range(IMPUTE_ROUNDS + 1):
        for d in np.flatnonzero(holes[rows].any(axis=0)):
            others = [] if rounds == 0 else [e for e in range(z.shape[1]) if e != d]
            design = np.c_[filled[:, others], c, np.ones(len(z))]
            known, missing = ~holes[:, d], holes[:, d] & rows
            coef = _ridge(design[known], z[known, d])
            filled[missing, d] = design[missing] @ coef
    out = filled * std + mean
    out[~rows] = np.nan
    return out


def _ridge(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    gram = x.T @ x
    return np.linalg.solve(gram + IMPUTE_PENALTY * max(len(y), 1) * np.eye(len(gram)), x.T @ y)
