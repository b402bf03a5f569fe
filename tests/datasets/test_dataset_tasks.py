"""Task suites: the paper's tasks resolve on the built-ins or say what is missing; hard splits are hard."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from latbench import datasets
from latbench.datasets.correlation import device_correlations
from latbench.datasets.tasks import EAGLE_DEVICES
from tests.datasets.dataset_helpers import cli


@pytest.mark.slow
def test_tasks_list_says_which_run_and_which_need_eagle(home):
    listed = {t["name"]: t for t in json.loads(cli("tasks", "list", "--json").stdout)}
    assert list(listed) == ["ND", "NA", "N1", "N2", "N3", "N4", "FD", "FA", "F1", "F2", "F3", "F4", "OA", "O1"]
    assert {n for n, t in listed.items() if t["ready"]} == {"ND", "FD", "FA", "F1", "F2", "F3", "F4", "OA", "O1"}
    na = listed["NA"]
    assert na["missing"] == ["desktop_gpu_gtx_1080ti_fp32", "embedded_tpu_edge_tpu_int8"]
    assert "BRP-NAS" in na["explain"] and "latbench dataset import" in na["explain"]
    assert na["found"]["eyeriss"] == "help-nb201"
    assert len(listed["FA"]["train"]) == 15
    shown = cli("tasks", "show", "N2")
    assert "train\t1080ti_1\thelp-nb201" in shown.stdout and "test\tpixel3\thelp-nb201" in shown.stdout
    assert "embedded_gpu_jetson_nano_fp16" in shown.stderr


def test_a_ready_task_resolves_to_its_devices_with_the_shipped_values(home):
    task, view = datasets.resolve_task("fd")
    assert view.device_names == [*task.train, *task.test] and len(view.archs) == 5000
    assert np.array_equal(view.vector("raspi4"), datasets.load("help-fbnet").vector("raspi4"))
    with pytest.raises(datasets.TaskUnavailable, match="N4 needs 8 device"):
        datasets.resolve_task("N4")
    with pytest.raises(datasets.DatasetError, match="unknown task"):
        datasets.get_task("N9")


@pytest.mark.parametrize(("name", "held_out"), [("OA", "titan_rtx"), ("O1", "v100")])
def test_the_ofa_tasks_test_on_a_gpu_model_they_do_not_train_on(home, name, held_out):
    task, view = datasets.resolve_task(name.lower())
    train, test = ({d.rsplit("_", 1)[0] for d in devices} for devices in (task.train, task.test))
    assert test == {held_out} and held_out not in train and len(train) == 3
    assert task.space == view.space == "ofa-mbv3" and view.device_names == [*task.train, *task.test]
    assert np.array_equal(view.vector(task.test[-1]), datasets.load("help-ofa").vector(task.test[-1]))


def test_a_split_of_ofa_takes_help_ofas_devices_by_default(home):
    split = datasets.generate_split("ofa-mbv3", train=6, test=3, seed=0)
    assert split.datasets == ("help-ofa",) and len(split.train) == 6 and len(split.test) == 3
    assert set(split.train) | set(split.test) <= set(datasets.load("help-ofa").device_names)
    assert split.srcc_within_test > split.srcc_across


@pytest.mark.slow
def test_importing_the_eagle_devices_makes_the_eagle_tasks_run(home, tmp_path):
    """Stand-in Eagle devices (real HELP latencies under Eagle's names) resolve NA and N1-N4 with the built-in."""
    help201 = datasets.load("help-nb201")
    archs = help201.archs[::25]
    sources = dict(zip(sorted(EAGLE_DEVICES), help201.device_names))
    frames = [
        pd.DataFrame({"arch": archs, "device": name, "latency_ms": help201.vector(source)[::25]})
        for name, source in sources.items()
    ]
    pd.concat(frames).to_csv(tmp_path / "eagle.csv", index=False)
    assert cli("dataset", "import", str(tmp_path / "eagle.csv"), "--space", "nb201").returncode == 0
    ready = {t["name"]: t["ready"] for t in json.loads(cli("tasks", "list", "--json").stdout)}
    assert all(ready.values())
    task, view = datasets.resolve_task("NA")
    assert view.device_names == [*task.train, *task.test] and len(view.archs) == 15625
    assert view.vector("embedded_tpu_edge_tpu_int8")[0] == help201.vector(sources["embedded_tpu_edge_tpu_int8"])[0]
    assert np.isnan(view.vector("desktop_gpu_gtx_1080ti_fp32")[1])  # measured on every 25th cell only
    only_builtin = json.loads(cli("tasks", "show", "NA", "--datasets", "help-nb201", "--json").stdout)
    assert not only_builtin["ready"]


@pytest.mark.slow
def test_generated_splits_are_deterministic_and_harder_than_random(home):
    args = ("tasks", "generate", "--space", "fbnet", "--train", "5", "--test", "5", "--seed", "3", "--json")
    first, second = cli(*args), cli(*args)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    split = json.loads(first.stdout)
    assert len(split["train"]) == 5 and len(split["test"]) == 5 and not set(split["train"]) & set(split["test"])
    corr = device_correlations(datasets.load("help-fbnet"))
    index = {d: i for i, d in enumerate(corr.devices)}
    across = corr.srcc[np.ix_([index[d] for d in split["train"]], [index[d] for d in split["test"]])].mean()
    assert across == pytest.approx(split["srcc_across"], abs=1e-4)
    rng = np.random.default_rng(0)
    random_across = []
    for _ in range(300):
        picked = rng.choice(len(corr.devices), size=10, replace=False)
        random_across.append(corr.srcc[np.ix_(picked[:5], picked[5:])].mean())
    assert across < np.quantile(random_across, 0.01)
    assert split["srcc_within_train"] > across and split["srcc_within_test"] > across


@pytest.mark.slow
def test_generate_works_on_a_users_devices_beside_the_builtin(home, tmp_path):
    help201 = datasets.load("help-nb201")
    mine = help201.select(["raspi4", "pixel3"], name="mine")
    mine = datasets.Dataset(
        name="mine",
        space="nb201",
        archs=mine.archs,
        latency=mine.latency,
        devices=tuple(datasets.DeviceMeta(name=f"my_{d.name}") for d in mine.devices),
    )
    datasets.save(mine)
    result = cli(
        "tasks",
        "generate",
        "--space",
        "nb201",
        "--datasets",
        "help-nb201,mine",
        "--train",
        "10",
        "--test",
        "4",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    split = json.loads(result.stdout)
    assert split["datasets"] == ["help-nb201", "mine"] and len(split["train"]) == 10 and len(split["test"]) == 4
    assert set(split["train"]) | set(split["test"]) <= {*help201.device_names, "my_raspi4", "my_pixel3"}
    too_many = cli("tasks", "generate", "--space", "fbnet", "--train", "20", "--test", "10")
    assert too_many.returncode == 1 and "needs 30 devices; there are 27" in too_many.stderr
    clash = cli(
        "tasks", "generate", "--space", "nb201", "--datasets", "help-nb201,help-nb201", "--train", "2", "--test", "2"
    )
    assert clash.returncode == 1 and "--prefix" in clash.stderr


def test_splits_come_out_at_the_asked_sizes_even_beyond_a_bisection_half():
    """Sizes that need a half to grow (more train devices than a bisection half holds) still come out right."""
    ds = datasets.load("help-fbnet").select(["pixel2", "pixel3", "raspi4", "eyeriss", "fpga", "1080ti_1"])
    for train, test in [(5, 1), (1, 5), (3, 3), (2, 2)]:
        split = datasets.hard_split(ds, train, test, seed=1)
        assert (len(split.train), len(split.test)) == (train, test)
        assert not set(split.train) & set(split.test)
