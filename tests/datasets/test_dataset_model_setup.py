"""A model set's files differ in opset and batch, as files exported the usual ways do: those are each model's own,
so one device's results of them build into one dataset, while what is truly the device's setup (threads, timing
settings) must still agree. An export of it joins back to results by hash and input shapes, written alike."""

from __future__ import annotations

import csv

import pytest

import latbench
from latbench import datasets
from latbench.datasets.errors import InvalidTable
from latbench.resultfile import read_results, write_results
from tests.test_local_model_rows import FAST, relu_model


@pytest.fixture
def mixed(tmp_path):
    """Results of three files on one machine: opset 17 at batch 1, opset 13 at batch 4, and two inputs whose model
    order (``img``, ``feat``) is not their name order."""
    models = [
        relu_model(tmp_path / "new.onnx"),
        relu_model(tmp_path / "old.onnx", opset=13, dims=(4, 8)),
        relu_model(tmp_path / "two.onnx", inputs=("img", "feat")),
    ]
    latbench.measure(models=models, settings=FAST, out=tmp_path / "mix.csv", reference=False)
    return tmp_path / "mix.csv"


def test_files_of_different_opsets_and_batches_build_into_one_device(mixed):
    ds = datasets.build_from_results(mixed, name="mix", device="vm", include_unstable=True)
    assert ds.archs == ("new.onnx", "old.onnx", "two.onnx") and list(ds.device_names) == ["vm"]
    [meta] = ds.devices
    assert meta.batch is None and "opset" not in meta.settings and meta.settings["min_runs"] == 5
    assert [k.input_shapes for k in ds.models] == ["x:1x8", "x:4x8", "img:1x8;feat:1x8"]


def test_the_device_setup_is_still_checked_and_counted_in_good_english(mixed, tmp_path):
    rows = read_results(mixed)
    rows[0] = dict(rows[0], threads=2)
    write_results(tmp_path / "threads.csv", rows)
    with pytest.raises(InvalidTable, match=r"threads: 2 \(1 result\) vs 1 \(2 results\)"):
        datasets.build_from_results(tmp_path / "threads.csv", name="t", include_unstable=True)
    rows = read_results(mixed)
    rows[1] = dict(rows[1], cfg_min_time_s=0.5)
    write_results(tmp_path / "timing.csv", rows)
    with pytest.raises(InvalidTable, match=r"cfg_min_time_s: 0.01 \(2 results\) vs 0.5 \(1 result\)"):
        datasets.build_from_results(tmp_path / "timing.csv", name="t", include_unstable=True)


def test_a_model_set_export_carries_each_model_hash_and_shapes_as_results_write_them(mixed, tmp_path):
    ds = datasets.build_from_results(mixed, name="mix", device="vm", include_unstable=True)
    results = {r["arch"]: r for r in read_results(mixed)}
    for wide in (False, True):
        out = tmp_path / f"mix-{wide}.csv"
        datasets.export(ds, "csv", out, wide=wide)
        with out.open(newline="") as f:
            rows = list(csv.DictReader(f))
        assert list(rows[0])[:4] == ["arch", "arch_index", "model_sha256", "input_shapes"]
        for row in rows:
            assert row["model_sha256"] == results[row["arch"]]["artifact_sha256"]
            assert row["input_shapes"] == results[row["arch"]]["input_shapes"]
    pytest.importorskip("pyarrow")
    datasets.export(ds, "parquet", tmp_path / "mix.parquet")
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "mix.parquet").to_pylist()
    assert {r["input_shapes"] for r in table} == {"x:1x8", "x:4x8", "img:1x8;feat:1x8"}
