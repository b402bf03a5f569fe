"""Datasets of users' own model files: a member is a model's content and input shapes, never its file name.

Two desks time real networks exported from PyTorch with ``latbench measure --model``: the same MobileNet under
two names, a ResNet that happens to be called ``mobilenet.onnx`` too, and one transformer at two sequence lengths.
Built into datasets and combined as a user would, each model and shape is one column, whatever it was called.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from latbench import datasets
from latbench.datasets import storage
from latbench.resultfile import read_results, write_results
from tests.datasets.dataset_helpers import cli, snapshot
from tests.support.modelfiles import mobilenet_onnx, resnet_onnx, transformer_onnx
from tests.support.models import FAST_CLI
from tests.support.processes import LATBENCH


def measure(models: list[Path], shapes: str, out: Path, cache: Path) -> Path:
    env = {**os.environ, "LATBENCH_CACHE_DIR": str(cache)}
    models_args = [arg for model in models for arg in ("--model", str(model))]
    subprocess.run(
        [
            *LATBENCH,
            "measure",
            *models_args,
            "--input",
            shapes,
            *FAST_CLI,
            "--min-runs",
            "5",
            "--no-reference",
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
        env=env,
        timeout=600,
    )
    return out


@pytest.fixture(scope="module")
def desks(tmp_path_factory: pytest.TempPathFactory, artifact_cache: Path) -> dict[str, Path]:
    """Results of two desks: ``a`` times mobilenet.onnx and bert.onnx at 1x16; ``b`` times a copy of the same
    MobileNet named copy.onnx, a ResNet named mobilenet.onnx, and bert.onnx at 1x32."""
    root = tmp_path_factory.mktemp("desks")
    (root / "a").mkdir()
    (root / "b").mkdir()
    mobilenet = mobilenet_onnx(root / "a" / "mobilenet.onnx")
    bert = transformer_onnx(root / "a" / "bert.onnx")
    shutil.copy(mobilenet, root / "b" / "copy.onnx")
    resnet_onnx(root / "b" / "mobilenet.onnx")
    shutil.copy(bert, root / "b" / "bert.onnx")
    return {
        "a": measure([mobilenet, bert], "input_ids:1x16", root / "a.csv", artifact_cache),
        "b": measure(
            [root / "b" / "copy.onnx", root / "b" / "mobilenet.onnx", root / "b" / "bert.onnx"],
            "input_ids:1x32",
            root / "b.csv",
            artifact_cache,
        ),
    }


def built(results: Path, name: str, device: str) -> datasets.Dataset:
    done = cli(
        "dataset", "build", "--from-results", str(results), "--name", name, "--device", device, "--include-unstable"
    )
    assert done.returncode == 0, done.stderr
    return datasets.load(name)


@pytest.mark.slow
def test_a_combine_matches_models_by_content_and_shapes_not_by_file_name(home, desks):
    a, b = read_results(desks["a"]), read_results(desks["b"])
    sha = {(r["arch"], r["input_shapes"]): r["artifact_sha256"] for r in [*a, *b]}
    mobilenet, bert = sha[("mobilenet.onnx", "image:1x3x32x32")], sha[("bert.onnx", "input_ids:1x16")]
    resnet = sha[("mobilenet.onnx", "pixels:1x3x32x32")]
    assert sha[("copy.onnx", "image:1x3x32x32")] == mobilenet and sha[("bert.onnx", "input_ids:1x32")] == bert
    built(desks["a"], "desk-a", "a")
    built(desks["b"], "desk-b", "b")
    done = cli("dataset", "combine", "desk-a", "desk-b", "--name", "both")
    assert done.returncode == 0, done.stderr
    both = datasets.load("both")
    assert both.archs == (
        f"mobilenet.onnx@{mobilenet[:8]}",
        "bert.onnx[input_ids:1x16]",
        f"mobilenet.onnx@{resnet[:8]}",
        "bert.onnx[input_ids:1x32]",
    )
    assert both.models == (
        datasets.ModelKey(mobilenet, "image:1x3x32x32"),
        datasets.ModelKey(bert, "input_ids:1x16"),
        datasets.ModelKey(resnet, "pixels:1x3x32x32"),
        datasets.ModelKey(bert, "input_ids:1x32"),
    )
    latency = {
        (r["artifact_sha256"], r["input_shapes"], device): r["latency_ms"]
        for rows, device in ((a, "a"), (b, "b"))
        for r in rows
    }
    for d in ("a", "b"):
        for column, key in enumerate(both.models):
            expected = latency.get((key.sha256, key.input_shapes, d), np.nan)
            assert both.vector(d)[column] == pytest.approx(expected, nan_ok=True)
    assert not np.isnan(both.latency[:, 0]).any()  # the same MobileNet on both desks, under two names: one column
    card = json.loads(cli("dataset", "show", "both", "--json").stdout)
    assert card["models"][2] == {
        "arch": f"mobilenet.onnx@{resnet[:8]}",
        "sha256": resnet,
        "input_shapes": "pixels:1x3x32x32",
    }


@pytest.mark.slow
def test_one_build_keeps_models_apart_and_names_them_by_file(home, desks, tmp_path):
    desk_b = built(desks["b"], "desk-b", "b")
    assert desk_b.archs == ("copy.onnx", "mobilenet.onnx", "bert.onnx")
    rows = read_results(desks["b"])
    same_name = tmp_path / "same-name.csv"  # the ResNet and the MobileNet both called mobilenet.onnx in one file
    write_results(same_name, [dict(rows[0], arch="mobilenet.onnx"), *rows[1:]])
    ds = built(same_name, "same-name", "b")
    assert [a.split("@")[0] for a in ds.archs] == ["mobilenet.onnx", "mobilenet.onnx", "bert.onnx"]
    assert len(set(ds.archs)) == 3 and ds.models is not None and len({k.sha256 for k in ds.models}) == 3


@pytest.mark.slow
def test_a_model_set_written_before_model_keys_loads_but_is_not_combined(home, desks):
    new = built(desks["a"], "desk-a", "a")
    built(desks["b"], "old", "b")
    path = home / "datasets" / "old"
    old = storage.read(path)
    legacy = datasets.Dataset(old.name, old.space, old.archs, old.latency.copy(), old.devices, old.provenance)
    shutil.rmtree(path)
    path.mkdir()
    storage.write(legacy, path)  # as a latbench before model keys wrote it: names only
    card = json.loads((path / "card.json").read_text())
    del card["archs_encoding"], card["archs_sha256"]
    (path / "card.json").write_text(json.dumps(card))

    shown = cli("dataset", "show", "old")
    assert shown.returncode == 0, shown.stderr
    assert datasets.load("old").models is None and datasets.load("old").archs == (
        "copy.onnx",
        "mobilenet.onnx",
        "bert.onnx",
    )
    before = snapshot(home)
    refused = cli("dataset", "combine", new.name, "old", "--name", "mixed")
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "'old' is a model set written before datasets recorded each model's content hash" in refused.stderr
    assert "latbench dataset build --from-results b.csv --name old --force" in refused.stderr
    assert snapshot(home) == before


def test_a_table_of_model_names_is_not_imported(home, tmp_path):
    table = tmp_path / "models.csv"
    table.write_text("arch,device,latency_ms\nmobilenet.onnx,pi,1.5\n")
    refused = cli("dataset", "import", str(table), "--space", "model")
    assert refused.returncode == 1 and "a table cannot say which model file each name stands for" in refused.stderr
    assert not (home / "datasets").exists()


@pytest.mark.slow
def test_model_results_without_a_content_hash_are_refused(home, desks, tmp_path):
    rows = read_results(desks["a"])
    path = tmp_path / "nohash.csv"
    write_results(path, [dict(rows[0], artifact_sha256=None), *rows[1:]])
    refused = cli("dataset", "build", "--from-results", str(path), "--include-unstable")
    assert refused.returncode == 1 and "result 1 ('mobilenet.onnx'): artifact_sha256 None" in refused.stderr
