"""The local dataset registry (``$LATBENCH_HOME/datasets/NAME/``) and the built-in datasets shipped in the package.

Built-ins are read from package data and never copied into the registry. A dataset is written into a temporary
directory and renamed into place, so a failed or interrupted save leaves the registry as it was.
"""

from __future__ import annotations

import re
import shutil
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from latbench.datasets import storage
from latbench.datasets.errors import DatasetError, DatasetExists, DatasetNotFound
from latbench.datasets.model import Dataset
from latbench.paths import latbench_home
from latbench.spaces import get_space

BUILTINS = ("help-nb201", "help-fbnet", "help-ofa", "here-nb201-int8", "here-fbnet-int8")
"""HELP's published tables, then datasets latbench measured itself (``benchmarks/measure_int8_dataset.py``)."""
BUILTIN_OF_SPACE = {"nb201": "help-nb201", "fbnet": "help-fbnet", "ofa-mbv3": "help-ofa"}
"""The built-in dataset of each space that has one: its source latencies and its spaces' default candidates."""
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class Summary:
    """A dataset as listed: read from its card alone, without loading the latencies."""

    name: str
    space: str
    devices: tuple[str, ...]
    n_archs: int
    kind: str
    builtin: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "space": self.space,
            "devices": list(self.devices),
            "n_archs": self.n_archs,
            "kind": self.kind,
            "builtin": self.builtin,
        }


def registry_dir() -> Path:
    """``$LATBENCH_HOME/datasets``, with ``LATBENCH_HOME`` defaulting to ``~/.local/share/latbench``."""
    return latbench_home() / "datasets"


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise DatasetError(
            f"invalid dataset name {name!r}: use 1-64 lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def _builtin_dir(name: str) -> Any:
    return resources.files("latbench.datasets").joinpath("data", name)


def _summary(meta: dict[str, Any], builtin: bool) -> Summary:
    return Summary(
        name=meta["name"],
        space=meta["space"],
        devices=tuple(d["name"] for d in meta["devices"]),
        n_archs=meta["n_archs"],
        kind=meta["provenance"].get("kind", ""),
        builtin=builtin,
    )


def list_datasets() -> list[Summary]:
    """Built-ins first, then the registry's datasets by name."""
    found = [_summary(storage.read_card(_builtin_dir(name)), True) for name in BUILTINS]
    root = registry_dir()
    if root.is_dir():
        for path in sorted(root.iterdir()):
            if path.is_dir() and NAME_PATTERN.match(path.name):
                found.append(_summary(storage.read_card(path), False))
    return found


def load(name: str) -> Dataset:
    """The dataset called ``name``: a built-in (``BUILTINS``) or one in the registry."""
    if name in BUILTINS:
        return storage.read(_builtin_dir(name), builtin=True)
    path = registry_dir() / check_name(name)
    if not path.is_dir():
        known = ", ".join(s.name for s in list_datasets())
        raise DatasetNotFound(f"no dataset {name!r}; known datasets: {known}")
    return storage.read(path)


def save(ds: Dataset, overwrite: bool = False) -> Path:
    """Store ``ds`` under its name; an existing dataset of that name is replaced only with ``overwrite``."""
    check_name(ds.name)
    if ds.name in BUILTINS:
        raise DatasetExists(f"{ds.name!r} is a built-in dataset; choose another name")
    root = registry_dir()
    target = root / ds.name
    if target.exists() and not overwrite:
        raise DatasetExists(f"dataset {ds.name!r} already exists; choose another name or replace it with --force")
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{ds.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        storage.write(ds, tmp)
        if target.exists():
            old = root / f".old-{ds.name}-{uuid.uuid4().hex[:8]}"
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old)
        else:
            tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return target


def remove(name: str) -> None:
    if name in BUILTINS:
        raise DatasetError(f"{name!r} is built in and cannot be removed")
    path = registry_dir() / check_name(name)
    if not path.is_dir():
        raise DatasetNotFound(f"no dataset {name!r} in the registry ({registry_dir()})")
    trash = path.with_name(f".rm-{name}-{uuid.uuid4().hex[:8]}")
    path.rename(trash)
    shutil.rmtree(trash)


def space_archs(space: str) -> list[str]:
    """The architectures a space's tools default to: every member where the space lists them (NB201, in official
    index order), else those of its built-in dataset (FBNet: ``help-fbnet``'s 5,000, OFA MobileNetV3: ``help-ofa``'s
    5,000, in its order)."""
    sp = get_space(space)
    listed = sp.archs()
    if listed is not None:
        return listed
    if sp.name not in BUILTIN_OF_SPACE:
        raise DatasetError(
            f"search space {sp.name!r} does not list its members (its archs() gives none) and latbench has no "
            "built-in dataset of it; give the architectures explicitly"
        )
    return list(load(BUILTIN_OF_SPACE[sp.name]).archs)
