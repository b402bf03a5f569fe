"""The development protocol: many generated device splits per space, chosen on one part and reported on another.

A predictor tuned on the seven paper tasks is tuned on their target devices. Here every space's devices are
first dealt, family by family (``families.py``), into **dev targets** and **report targets** (deterministic by
seed), so no device that a method was chosen on is ever a target when it is reported. Two kinds of split follow:

- ``hard``: the paper's automatic tasks (``splits.hard_split``, Kernighan-Lin on device SRCC) for several seeds
  and sizes; each hard split's test devices are cut down to the part's targets.
- ``family``: leave one device family out: the part's targets of one family (GPUs, server CPUs, phones, edge
  accelerators) are tested after pretraining on devices of the other families only.

Methods are chosen on the ``dev`` part; the ``report`` part is what docs/benchmarks.md reports; the paper's
tasks stay a final check. Extra datasets of the same space (say int8 measurements of this CPU) join the pool
of devices, and so become targets and sources like the built-in ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from latbench.datasets.correlation import Narrowing, device_correlations, narrowing, shared_architectures
from latbench.datasets.errors import DatasetError
from latbench.datasets.families import device_family
from latbench.datasets.model import Dataset, combine
from latbench.datasets.registry import BUILTIN_OF_SPACE, load
from latbench.datasets.splits import hard_split
from latbench.datasets.tasks import Task
from latbench.spaces import get_space

PARTS = ("dev", "report")
HARD_SIZES = ((5, 5), (9, 6), (5, 8))
"""(train, test) sizes the hard splits cycle through, before the test side is cut to one part's targets."""
FAMILY_TRAIN = 9
"""Source devices of a leave-one-family-out split (the size of the paper's ND/FD train sides)."""
MAX_TEST = 4
"""At most this many target devices per split, to bound the cost of a run."""
SCORED_SAMPLES = 20
"""Samples a split's target is transferred from and then scored over all it measured (benchmarks/predictor_splits.py,
docs/benchmarks.md): a target that measured no more is scored on its own samples."""
FAMILY_TASKS: dict[tuple[str, str], tuple[str, ...]] = {
    ("nb201", "gpu"): ("N1", "N4"),
    ("nb201", "edge"): ("N2",),
    ("fbnet", "gpu"): ("F2", "F3"),
    ("fbnet", "edge"): ("FD",),
    ("fbnet", "phone"): ("FA",),
}
"""(space, held-out family) -> the paper tasks whose targets are that family and whose sources exclude it (N2's
targets mix edge and phone devices, FA's a server CPU and phones): the figures a family split is judged by."""


@dataclass(frozen=True)
class ProtocolSplit:
    """One generated task of the protocol: which part it belongs to, how it was made, its devices."""

    name: str
    part: str
    kind: str
    space: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    family: str | None
    datasets: tuple[str, ...]

    @property
    def task(self) -> Task:
        return Task(self.name, self.space, self.train, self.test)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PoolCoverage:
    """What the pool's devices measured in common: the hard splits correlate them over ``shared`` architectures,
    fewer than the other devices share wherever a dataset of ``narrowed_by`` joins; ``measured`` counts each
    device's architectures, what a split's target is scored on."""

    devices: int
    shared: int
    narrowed_by: tuple[Narrowing, ...]
    measured: dict[str, int]

    def warnings(self, targets: Iterable[str] = (), samples: int = SCORED_SAMPLES) -> list[str]:
        """One line per narrowing dataset, and per target of ``targets`` that measured no more than ``samples``."""
        lines = [n.message() for n in self.narrowed_by]
        for device in sorted(set(targets)):
            if self.measured[device] <= samples:
                lines.append(
                    f"target device {device!r} measured {self.measured[device]} architecture(s), no more than the "
                    f"{samples} samples a split's target is transferred from: its score would be of its own samples"
                )
        return lines


def _pool(
    space: str, dataset_names: Sequence[str] | None, extra: Sequence[str]
) -> tuple[Dataset, tuple[str, ...], dict[str, list[str]]]:
    """The combined devices, the datasets' names, and each dataset's devices."""
    space = get_space(space).name
    if not dataset_names and space not in BUILTIN_OF_SPACE:
        raise DatasetError(f"latbench has no built-in dataset of {space}; name the datasets to split")
    names = tuple(dict.fromkeys([*(dataset_names or [BUILTIN_OF_SPACE[space]]), *extra]))
    loaded = [load(n) for n in names]
    other = [f"{ds.name} ({ds.space})" for ds in loaded if ds.space != space]
    if other:
        raise DatasetError(f"a {space} split cannot use datasets of another space: {', '.join(other)}")
    return combine(loaded, name=f"protocol-{space}"), names, {ds.name: ds.device_names for ds in loaded}


def pool_coverage(space: str, dataset_names: Sequence[str] | None = None, extra: Sequence[str] = ()) -> PoolCoverage:
    """The coverage of the devices ``protocol_splits`` (and ``tasks.generate_split``, without ``extra``) would
    split: the same datasets, loaded the same way."""
    ds, _, groups = _pool(space, dataset_names, extra)
    return PoolCoverage(
        devices=len(ds.devices),
        shared=shared_architectures(ds),
        narrowed_by=tuple(narrowing(ds, groups)),
        measured={d: ds.measured(d) for d in ds.device_names},
    )


def deal_targets(ds: Dataset, seed: int = 0) -> dict[str, str]:
    """Device -> ``dev`` or ``report``: each family's devices shuffled (by ``seed``) and dealt alternately,
    report first, so a family of one device is a report target and every larger family is in both parts."""
    rng = np.random.default_rng(seed)
    by_family: dict[str, list[str]] = {}
    for meta in ds.devices:
        by_family.setdefault(device_family(meta), []).append(meta.name)
    part: dict[str, str] = {}
    for family in sorted(by_family):
        for i, device in enumerate(rng.permutation(by_family[family])):
            part[str(device)] = PARTS[(i + 1) % 2]
    return part


def _cap(devices: list[str], rng: np.random.Generator) -> tuple[str, ...]:
    chosen = devices if len(devices) <= MAX_TEST else list(rng.choice(devices, MAX_TEST, replace=False))
    return tuple(sorted(str(d) for d in chosen))


def _family_splits(ds: Dataset, part: dict[str, str], seed: int, names: tuple[str, ...]) -> list[ProtocolSplit]:
    family = {m.name: device_family(m) for m in ds.devices}
    out = []
    for held in sorted(set(family.values())):
        others: dict[str, list[str]] = {}
        for device, f in family.items():
            if f != held:
                others.setdefault(f, []).append(device)
        if not others:
            continue
        rng = np.random.default_rng([seed, len(held), *held.encode()])
        queues = [list(rng.permutation(others[f])) for f in sorted(others)]
        train: list[str] = []
        while len(train) < FAMILY_TRAIN and any(queues):
            for queue in queues:
                if queue and len(train) < FAMILY_TRAIN:
                    train.append(str(queue.pop(0)))
        for p in PARTS:
            test = [d for d, f in family.items() if f == held and part[d] == p]
            if test:
                name = f"{ds.space}-{p}-family-{held}"
                out.append(
                    ProtocolSplit(name, p, "family", ds.space, tuple(sorted(train)), _cap(test, rng), held, names)
                )
    return out


def _hard_splits(
    ds: Dataset, part: dict[str, str], seed: int, count: int, names: tuple[str, ...]
) -> list[ProtocolSplit]:
    out: list[ProtocolSplit] = []
    seen: set[tuple[tuple[str, ...], tuple[str, ...]]] = set()
    n_devices = len(ds.devices)
    correlations = device_correlations(ds)
    for k in range(count):
        train, test = HARD_SIZES[k % len(HARD_SIZES)]
        if train + test > n_devices:
            train, test = max(1, n_devices // 2), max(1, n_devices - n_devices // 2)
        split = hard_split(ds, train, test, seed=seed * 1000 + k, correlations=correlations)
        rng = np.random.default_rng([seed, k])
        for p in PARTS:
            targets = _cap([d for d in split.test if part[d] == p], rng)
            if targets and (split.train, targets) not in seen:
                seen.add((split.train, targets))
                out.append(
                    ProtocolSplit(f"{ds.space}-{p}-hard-{k}", p, "hard", ds.space, split.train, targets, None, names)
                )
    return out


def protocol_splits(
    space: str,
    part: str | None = None,
    seed: int = 0,
    hard: int = 4,
    dataset_names: Sequence[str] | None = None,
    extra: Sequence[str] = (),
) -> list[ProtocolSplit]:
    """The protocol's splits of ``space`` (``part``: ``dev``, ``report`` or both), the same for the same arguments.

    Devices come from ``dataset_names`` (default: the space's built-in dataset) plus ``extra`` datasets of the
    same space; ``hard`` hard splits are generated (each may give a dev and a report split), then one
    leave-one-family-out split per family and part.
    """
    if part is not None and part not in PARTS:
        raise DatasetError(f"unknown part {part!r}; the parts are: {', '.join(PARTS)}")
    if hard < 0:
        raise DatasetError(f"the number of hard splits cannot be negative, got {hard}")
    ds, names, _ = _pool(space, dataset_names, extra)
    dealt = deal_targets(ds, seed)
    splits = _hard_splits(ds, dealt, seed, hard, names) + _family_splits(ds, dealt, seed, names)
    return [s for s in splits if part is None or s.part == part]
