"""The development protocol: device families from what datasets say, and splits that never report on a device
that methods were chosen on."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from latbench import datasets
from latbench.datasets.protocol import FAMILY_TRAIN, MAX_TEST
from latbench.datasets.tasks import EAGLE_DEVICES
from tests.datasets.dataset_helpers import cli


def int8_cpu_dataset(name: str, n_archs: int = 400) -> datasets.Dataset:
    """A stand-in for int8 measurements on this CPU: two HELP columns under new names, on part of the archs,
    described as a local ONNX Runtime CPU device would be."""
    helpfb = datasets.load("help-fbnet")
    view = helpfb.select(["gold_6240", "silver_4114"], name=name)
    latency = view.latency.copy()
    latency[:, n_archs:] = np.nan
    devices = tuple(
        replace(d, name=f"{name}-{i}", description="", runtime="onnxruntime", provider="CPUExecutionProvider")
        for i, d in enumerate(view.devices)
    )
    return replace(view, latency=latency, devices=devices)


def test_every_shipped_and_eagle_device_has_a_family():
    fbnet = datasets.load("help-fbnet")
    counted: dict[str, int] = {}
    for meta in fbnet.devices:
        family = datasets.device_family(meta)
        counted[family] = counted.get(family, 0) + 1
    assert counted == {"gpu": 15, "cpu": 4, "phone": 5, "edge": 3}
    eagle = {d: datasets.device_family(datasets.DeviceMeta(d)) for d in EAGLE_DEVICES}
    assert eagle["desktop_gpu_gtx_1080ti_fp32"] == "gpu" and eagle["desktop_cpu_core_i7_7820x_fp32"] == "cpu"
    assert eagle["embedded_gpu_jetson_nano_fp16"] == "edge" and eagle["embedded_tpu_edge_tpu_int8"] == "edge"
    assert eagle["mobile_gpu_snapdragon_855_adreno_640_int8"] == "phone"
    assert datasets.device_family(datasets.DeviceMeta("lab-box", provider="CPUExecutionProvider")) == "cpu"
    assert datasets.device_family(datasets.DeviceMeta("lab-box")) == "other"


@pytest.mark.slow
def test_report_targets_are_never_dev_targets_and_families_are_held_out(home):
    splits = datasets.protocol_splits("fbnet", seed=0)
    assert splits == datasets.protocol_splits("fbnet", seed=0)
    assert splits != datasets.protocol_splits("fbnet", seed=1)
    family = {m.name: datasets.device_family(m) for m in datasets.load("help-fbnet").devices}
    targets = {p: {d for s in splits if s.part == p for d in s.test} for p in datasets.PARTS}
    assert targets["dev"] and targets["report"] and not targets["dev"] & targets["report"]
    held = {(s.part, s.family) for s in splits if s.kind == "family"}
    assert held == {(p, f) for p in datasets.PARTS for f in ("gpu", "cpu", "phone", "edge")}
    for s in splits:
        assert 1 <= len(s.test) <= MAX_TEST and not set(s.train) & set(s.test)
        if s.kind == "family":
            assert len(s.train) == FAMILY_TRAIN and {family[d] for d in s.test} == {s.family}
            assert s.family not in {family[d] for d in s.train}
    assert {s.kind for s in splits} == {"hard", "family"}
    assert datasets.protocol_splits("fbnet", "dev") == [s for s in splits if s.part == "dev"]
    with pytest.raises(datasets.DatasetError, match="unknown part"):
        datasets.protocol_splits("fbnet", "test")


@pytest.mark.slow
def test_an_extra_dataset_of_the_space_joins_the_pool_as_targets_and_sources(home):
    datasets.save(int8_cpu_dataset("cpu-int8"))
    splits = datasets.protocol_splits("fbnet", extra=["cpu-int8"])
    local = {"cpu-int8-0", "cpu-int8-1"}
    tested = {d for s in splits for d in s.test}
    assert local & tested
    assert all(s.datasets == ("help-fbnet", "cpu-int8") for s in splits)
    cpu = [s for s in splits if s.family == "cpu"]
    assert cpu and not any(local & set(s.train) for s in cpu)
    task, view = cpu[0].task, datasets.tasks.resolve(cpu[0].task, cpu[0].datasets)
    assert view.device_names == [*task.train, *task.test]
    with pytest.raises(datasets.DatasetError, match="another space"):
        datasets.protocol_splits("nb201", extra=["cpu-int8"])


@pytest.mark.slow
def test_the_cli_lists_the_splits_of_a_part(home):
    done = cli("tasks", "splits", "--space", "ofa-mbv3", "--part", "report", "--json")
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert listed == [
        s.as_dict() | {"train": list(s.train), "test": list(s.test), "datasets": list(s.datasets)}
        for s in datasets.protocol_splits("ofa-mbv3", "report")
    ]
    bad = cli("tasks", "splits", "--space", "ofa-mbv3", "--part", "final")
    assert bad.returncode == 1 and "unknown part" in bad.stderr


@pytest.mark.slow
@pytest.mark.parametrize("space", ["nb201", "fbnet"])
def test_the_shipped_int8_device_is_a_report_target_and_no_source_of_its_splits(home, space):
    """docs/benchmarks.md reports the predictor on the int8 CPU through these splits, none pretrained on the
    same CPU at float32."""
    name = f"here-{space}-int8"
    splits = datasets.protocol_splits(space, "report", extra=[name])
    targeted = [s for s in splits if "cpu_ort_int8" in s.test]
    assert any(s.kind == "family" and s.family == "cpu" for s in targeted)
    assert all(not {"cpu_ort_int8", "cpu_ort_fp32"} & set(s.train) for s in targeted)
    assert all(s.datasets == (f"help-{space}", name) for s in targeted)
