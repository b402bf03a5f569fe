"""The paper's named task suites (NASFLAT, MLSys 2024) and latbench's OFA tasks as data, and finding each task's
devices in datasets.

A task is a search space, source devices to pretrain on (train) and target devices to transfer to (test). ND,
FD, FA and F1-F4 run on the built-in HELP tables. NA and N1-N4 also need devices of BRP-NAS's "Eagle" dataset,
which latbench does not ship: they resolve as soon as an imported dataset holds those devices, and otherwise say
which devices are missing and where they come from. The paper has no OFA tasks; OA and O1 hold out one GPU model
of ``help-ofa`` (all three batch sizes), so no test device shares a card with a train device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from latbench.datasets.errors import DatasetError, DatasetNotFound, TaskUnavailable
from latbench.datasets.model import Dataset, combine
from latbench.datasets.registry import BUILTIN_OF_SPACE, Summary, list_datasets, load
from latbench.datasets.splits import Split, hard_split
from latbench.spaces import get_space


@dataclass(frozen=True)
class Task:
    name: str
    space: str
    train: tuple[str, ...]
    test: tuple[str, ...]

    @property
    def devices(self) -> tuple[str, ...]:
        return self.train + self.test


def _task(name: str, space: str, train: str, test: str) -> Task:
    return Task(name, space, tuple(train.split()), tuple(test.split()))


def _ofa_gpus(*gpus: str) -> str:
    return " ".join(f"{gpu}_{b}" for gpu in gpus for b in (1, 32, 64))


_GPUS_FBNET = " ".join(
    f"{gpu}_{b}" for gpu in ("1080ti", "2080ti", "titan_rtx", "titanx", "titanxp") for b in (1, 32, 64)
)
TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        _task(
            "ND",
            "nb201",
            "1080ti_1 1080ti_32 1080ti_256 silver_4114 silver_4210r samsung_a50 pixel3 essential_ph_1 samsung_s7",
            "titan_rtx_256 gold_6226 fpga pixel2 raspi4 eyeriss",
        ),
        _task(
            "NA",
            "nb201",
            "titan_rtx_1 titan_rtx_32 titanxp_1 2080ti_1 titanx_1 1080ti_1 titanx_32 titanxp_32 "
            "2080ti_32 1080ti_32 gold_6226 samsung_s7 silver_4114 gold_6240 silver_4210r samsung_a50 pixel2",
            "eyeriss desktop_gpu_gtx_1080ti_fp32 embedded_tpu_edge_tpu_int8",
        ),
        _task(
            "N1",
            "nb201",
            "embedded_tpu_edge_tpu_int8 eyeriss mobile_gpu_snapdragon_675_adreno_612_int8 "
            "mobile_gpu_snapdragon_855_adreno_640_int8 pixel3",
            "1080ti_1 titan_rtx_32 titanxp_1 2080ti_32 titan_rtx_1",
        ),
        _task(
            "N2",
            "nb201",
            "1080ti_1 1080ti_32 titanx_32 titanxp_1 titanxp_32",
            "embedded_gpu_jetson_nano_fp16 "
            "embedded_tpu_edge_tpu_int8 mobile_dsp_snapdragon_675_hexagon_685_int8 "
            "mobile_dsp_snapdragon_855_hexagon_690_int8 pixel3",
        ),
        _task(
            "N3",
            "nb201",
            "desktop_gpu_gtx_1080ti_fp32 embedded_gpu_jetson_nano_fp16 eyeriss "
            "mobile_dsp_snapdragon_675_hexagon_685_int8 mobile_gpu_snapdragon_855_adreno_640_int8",
            "1080ti_1 2080ti_1 titanxp_1 2080ti_32 titanxp_32",
        ),
        _task(
            "N4",
            "nb201",
            "desktop_cpu_core_i7_7820x_fp32 embedded_gpu_jetson_nano_fp32 embedded_tpu_edge_tpu_int8 "
            "eyeriss mobile_cpu_snapdragon_855_kryo_485_int8 mobile_dsp_snapdragon_675_hexagon_685_int8 "
            "mobile_dsp_snapdragon_855_hexagon_690_int8 mobile_gpu_snapdragon_675_adreno_612_int8 "
            "mobile_gpu_snapdragon_855_adreno_640_int8 pixel2",
            "1080ti_1 2080ti_1 titan_rtx_1",
        ),
        _task(
            "FD",
            "fbnet",
            "1080ti_1 1080ti_32 1080ti_64 silver_4114 silver_4210r samsung_a50 pixel3 essential_ph_1 samsung_s7",
            "fpga raspi4 eyeriss",
        ),
        _task("FA", "fbnet", _GPUS_FBNET, "gold_6226 essential_ph_1 samsung_s7 pixel2"),
        _task(
            "F1",
            "fbnet",
            "2080ti_1 essential_ph_1 silver_4114 titan_rtx_1 titan_rtx_32",
            "eyeriss fpga raspi4 samsung_a50 samsung_s7",
        ),
        _task(
            "F2",
            "fbnet",
            "essential_ph_1 gold_6226 gold_6240 pixel3 raspi4",
            "1080ti_1 1080ti_32 2080ti_32 titan_rtx_1 titanxp_1",
        ),
        _task(
            "F3",
            "fbnet",
            "essential_ph_1 pixel2 pixel3 raspi4 samsung_s7",
            "1080ti_1 1080ti_32 2080ti_1 titan_rtx_1 titan_rtx_32",
        ),
        _task(
            "F4",
            "fbnet",
            "1080ti_64 2080ti_1 eyeriss gold_6226 gold_6240 raspi4 samsung_s7 silver_4210r titan_rtx_1 titan_rtx_32",
            "1080ti_1 pixel2 essential_ph_1",
        ),
        _task("OA", "ofa-mbv3", _ofa_gpus("2080ti", "titan_xp", "v100"), _ofa_gpus("titan_rtx")),
        _task("O1", "ofa-mbv3", _ofa_gpus("2080ti", "titan_rtx", "titan_xp"), _ofa_gpus("v100")),
    )
}
"""Task name -> task: the paper's as published (PAPER.md), train and test in its order; then latbench's OFA tasks,
OA with HELP's own OFA split (meta-train on 2080 Ti, Titan Xp, V100; its validation and test GPU, Titan RTX, as
the test devices) and O1 holding out the V100 instead."""

EAGLE = 'BRP-NAS "Eagle"'
SOURCE_HINTS = {
    EAGLE: "Dudziak et al., NeurIPS 2020; not shipped with latbench: convert its latency tables to a CSV of arch, "
    "device, latency_ms and load it with `latbench dataset import FILE --space nb201`",
}
UNKNOWN_SOURCE = "no dataset latbench knows of"
EAGLE_DEVICES = frozenset(
    d for t in TASKS.values() for d in t.devices if d.startswith(("desktop_", "embedded_", "mobile_"))
)
"""The Eagle devices the tasks name (Eagle's own names: kind, chip, precision)."""


@dataclass(frozen=True)
class Availability:
    """Where each of a task's devices was found (device -> dataset), and which were not."""

    task: Task
    found: dict[str, str]
    missing: tuple[str, ...]

    @property
    def ready(self) -> bool:
        return not self.missing

    def sources(self) -> dict[str, list[str]]:
        """Missing devices grouped by the dataset that would provide them."""
        by_source: dict[str, list[str]] = {}
        for device in self.missing:
            by_source.setdefault(EAGLE if device in EAGLE_DEVICES else UNKNOWN_SOURCE, []).append(device)
        return by_source

    def explain(self) -> str:
        listed = "; ".join(
            f"{', '.join(devices)} (from {source}" + (f": {SOURCE_HINTS[source]})" if source in SOURCE_HINTS else ")")
            for source, devices in self.sources().items()
        )
        return f"task {self.task.name} needs {len(self.missing)} device(s) that no dataset at hand holds: {listed}"


def get_task(name: str) -> Task:
    task = TASKS.get(name.upper())
    if task is None:
        raise DatasetError(f"unknown task {name!r}; the tasks are: {', '.join(TASKS)}")
    return task


def candidates(space: str, datasets: Sequence[str] | None = None) -> list[Summary]:
    """The datasets of ``space`` to look for devices in: ``datasets`` in that order, else built-ins then registry."""
    known = {s.name: s for s in list_datasets()}
    if datasets is None:
        return [s for s in known.values() if s.space == space]
    unknown = [d for d in datasets if d not in known]
    if unknown:
        raise DatasetNotFound(f"no dataset {', '.join(map(repr, unknown))}; known datasets: {', '.join(known)}")
    return [known[d] for d in datasets if known[d].space == space]


def availability(task: Task, datasets: Sequence[str] | None = None) -> Availability:
    """Find each device of ``task`` in the first dataset (of ``candidates``) that has it."""
    found: dict[str, str] = {}
    for summary in candidates(task.space, datasets):
        for device in summary.devices:
            found.setdefault(device, summary.name)
    return Availability(
        task, {d: found[d] for d in task.devices if d in found}, tuple(d for d in task.devices if d not in found)
    )


def resolve_task(name: str, datasets: Sequence[str] | None = None) -> tuple[Task, Dataset]:
    """The task and one dataset view holding exactly its devices (train first, then test).

    Raises ``TaskUnavailable`` naming the missing devices and the dataset that would provide them.
    """
    task = get_task(name)
    return task, resolve(task, datasets)


def resolve(task: Task, datasets: Sequence[str] | None = None) -> Dataset:
    """One dataset view holding exactly ``task``'s devices (train first, then test): a named or a generated task.

    Raises ``TaskUnavailable`` naming the missing devices and the dataset that would provide them.
    """
    found = availability(task, datasets)
    if not found.ready:
        raise TaskUnavailable(found.explain())
    sources: dict[str, list[str]] = {}
    for device, source in found.found.items():
        sources.setdefault(source, []).append(device)
    parts = [load(source).select(devices) for source, devices in sources.items()]
    return combine(parts, name=f"task-{task.name.lower()}").select(task.devices)


def generate_split(space: str, train: int, test: int, seed: int = 0, datasets: Sequence[str] | None = None) -> Split:
    """A hard split (``hard_split``) of the devices of ``datasets``, by default the built-in dataset of ``space``."""
    space = get_space(space).name
    if not datasets and space not in BUILTIN_OF_SPACE:
        raise DatasetError(f"latbench has no built-in dataset of {space}; name the datasets to split")
    names = list(datasets) if datasets else [BUILTIN_OF_SPACE[space]]
    loaded = [load(n) for n in names]
    other = [f"{ds.name} ({ds.space})" for ds in loaded if ds.space != space]
    if other:
        raise DatasetError(f"a {space} split cannot use datasets of another space: {', '.join(other)}")
    return replace(hard_split(combine(loaded, name="split"), train, test, seed), datasets=tuple(names))
