"""Import the NB201 latency tables of HW-NAS-Bench's ``HW-NAS-Bench-v1_0.pickle``, which users download themselves.

The pickle is read by an unpickler that admits only containers, numbers and numpy arrays: a file that would run
code when loaded is refused instead. HW-NAS-Bench stores one value per official NB201 index for each
``<device>_latency`` metric and image dataset (``cifar10``, ``cifar100``, ``ImageNet16-120``).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from latbench.datasets.errors import InvalidTable
from latbench.datasets.model import Dataset, DeviceMeta, new_provenance
from latbench.datasets.tables import default_name
from latbench.hashing import sha256_file
from latbench.spaces import get_space

IMAGE_DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
TABLES = {"nb201": "nasbench201"}
"""The pickle's per-network table of each space; its FBNet part is per-operator lookup tables, not networks."""
LICENSE = "MIT, Copyright (c) 2022 GaTech-EIC (HW-NAS-Bench)"
CITATION = (
    "C. Li et al., HW-NAS-Bench: Hardware-Aware Neural Architecture Search Benchmark, ICLR 2021; "
    "https://github.com/GATECH-EIC/HW-NAS-Bench"
)
_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("collections", "OrderedDict"),
}


class _TablesOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        raise InvalidTable(
            f"the pickle refers to {module}.{name}, which a table of numbers never needs; refusing "
            "to load it (it could run code)"
        )


def _load(path: Path) -> Any:
    try:
        with path.open("rb") as f:
            return _TablesOnly(f).load()
    except InvalidTable as exc:
        raise InvalidTable(f"{path}: {exc}") from None
    except Exception as exc:  # a damaged pickle raises many types (EOFError, UnpicklingError, ValueError ...)
        raise InvalidTable(f"cannot read {path} as a pickle: {exc}") from exc


def import_hwnasbench(
    path: str | Path,
    space: str = "nb201",
    *,
    image_dataset: str = "cifar10",
    name: str | None = None,
    prefix: str = "",
) -> Dataset:
    """Every ``*_latency`` metric of HW-NAS-Bench's NB201 table for ``image_dataset`` as one device each.

    Device names are the metric names without ``_latency`` (``raspi4``, ``pixel3``, ``edgegpu`` ...), after
    ``prefix``. FBNet is not imported: HW-NAS-Bench stores it as per-operator lookup tables, not per network.
    """
    path = Path(path)
    sp = get_space(space)
    archs = sp.archs()
    if sp.name not in TABLES or archs is None:
        raise InvalidTable(
            f"HW-NAS-Bench has no per-network latency table of space {sp.name!r}; it imports "
            f"{', '.join(TABLES)} only (its FBNet part is per-operator lookup tables, not measured networks)"
        )
    if image_dataset not in IMAGE_DATASETS:
        raise InvalidTable(
            f"unknown HW-NAS-Bench image dataset {image_dataset!r}; choose one of: {', '.join(IMAGE_DATASETS)}"
        )
    data = _load(path)
    try:
        tables = data[TABLES[sp.name]][image_dataset]
        metrics = sorted(k for k in tables if isinstance(k, str) and k.endswith("_latency"))
    except (KeyError, TypeError, IndexError):
        raise InvalidTable(
            f"{path} is not HW-NAS-Bench's pickle: it has no {TABLES[sp.name]!r} / {image_dataset!r} table"
        ) from None
    if not metrics:
        raise InvalidTable(f"{path}: the {TABLES[sp.name]} / {image_dataset!r} table has no '*_latency' metric")
    rows = []
    for metric in metrics:
        try:
            values = np.asarray(tables[metric], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidTable(f"{path}: {metric} is not a list of numbers: {exc}") from None
        if values.shape != (len(archs),):
            raise InvalidTable(
                f"{path}: {metric} has shape {values.shape}, expected {len(archs)} values "
                f"(one per official {sp.title} index)"
            )
        bad = np.flatnonzero(~np.isfinite(values) | (values <= 0))
        if len(bad):
            listed = ", ".join(f"index {i}: {values[i]!r}" for i in bad[:5])
            raise InvalidTable(
                f"{path}: {metric} has {len(bad)} value(s) that are not positive finite latencies ({listed})"
            )
        rows.append(values)
    devices = tuple(
        DeviceMeta(
            name=f"{prefix}{m.removesuffix('_latency')}",
            source=f"HW-NAS-Bench ({image_dataset})",
            license=LICENSE,
            description=f"HW-NAS-Bench metric {m}, {image_dataset}",
        )
        for m in metrics
    )
    provenance = new_provenance(
        "import", file=path.name, sha256=sha256_file(path), hwnas_image_dataset=image_dataset, citation=CITATION
    )
    return Dataset(
        name=name or default_name(path),
        space=sp.name,
        archs=tuple(archs),
        latency=np.stack(rows),
        devices=devices,
        provenance=provenance,
    )
