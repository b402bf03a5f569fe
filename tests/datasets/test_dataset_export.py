"""Exports for predictor code: HELP-style vectors in official index order, cards with hashes, plots."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from latbench import datasets
from latbench.spaces import get_space
from tests.datasets.dataset_helpers import cli, shared_table


@pytest.mark.slow
def test_help_format_nb201_vectors_are_in_official_index_order(tmp_path):
    out = tmp_path / "help201"
    result = cli("dataset", "export", "help-nb201", "--format", "help", "--out", str(out), "-d", "pixel3", "-d", "fpga")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    table = shared_table("nb201")
    for device in ("pixel3", "fpga"):
        vector = np.load(out / "latency" / f"{device}.npy")
        expected = table[table["device"] == device].sort_values("arch_index")["latency_ms"].to_numpy()
        assert vector.dtype == np.float64 and vector.shape == (15625,)
        assert np.array_equal(vector, expected)
    archs = (out / "archs.txt").read_text().splitlines()
    space = get_space("nb201")
    assert len(archs) == 15625 and all(archs[i] == space.from_index(i) for i in (0, 1, 9, 15624))
    assert sorted(p.name for p in (out / "latency").iterdir()) == ["fpga.npy", "pixel3.npy"]
    card = json.loads((out / "card.json").read_text())
    for name, sha in card["export"]["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == sha
    assert [d["name"] for d in card["devices"]] == ["pixel3", "fpga"]
    assert "Permission is hereby granted" in (out / "card.md").read_text()
    again = cli("dataset", "export", "help-nb201", "--format", "help", "--out", str(out))
    assert again.returncode == 1 and "already exists" in again.stderr


def test_a_partial_nb201_dataset_exports_nan_where_not_measured_and_combines_with_help(home, tmp_path):
    df = pd.DataFrame({"arch": [get_space("nb201").from_index(i) for i in (5, 77, 15000)], "latency_ms": [1.5, 2, 3]})
    df.to_csv(tmp_path / "three.csv", index=False)
    ds = datasets.import_table(tmp_path / "three.csv", "nb201", device="mine")
    datasets.export(ds, "help", tmp_path / "out")
    vector = np.load(tmp_path / "out" / "latency" / "mine.npy")
    assert np.count_nonzero(~np.isnan(vector)) == 3
    assert vector[[5, 77, 15000]].tolist() == [1.5, 2.0, 3.0]
    view = datasets.combine([datasets.load("help-nb201").select(["pixel3"]), ds])
    datasets.export(view, "csv", tmp_path / "view.csv")
    assert "Permission is hereby granted" in (tmp_path / "view.card.md").read_text()  # HELP's notice travels along
    assert len(pd.read_csv(tmp_path / "view.csv")) == 15625 + 3


def test_help_format_fbnet_keeps_the_dataset_order_with_archs_beside(tmp_path):
    datasets.export(datasets.load("help-fbnet").select(["raspi4"]), "help", tmp_path / "fb")
    table = shared_table("fbnet")
    raspi4 = table[table["device"] == "raspi4"].sort_values("arch_index")
    assert (tmp_path / "fb" / "archs.txt").read_text().splitlines() == raspi4["arch"].tolist()
    vector = np.load(tmp_path / "fb" / "latency" / "raspi4.npy")
    assert np.array_equal(vector, raspi4["latency_ms"].to_numpy())


def test_csv_export_has_the_public_columns_and_its_card(tmp_path):
    out = tmp_path / "fb.csv"
    datasets.export(datasets.load("help-fbnet").select(["eyeriss"]), "csv", out)
    exported = pd.read_csv(out)
    assert list(exported.columns) == ["arch", "arch_index", "device", "latency_ms"]
    public = shared_table("fbnet")
    public = public[public["device"] == "eyeriss"].reset_index(drop=True)
    assert exported[["arch", "arch_index", "device"]].equals(public[["arch", "arch_index", "device"]])
    card = json.loads((tmp_path / "fb.card.json").read_text())
    assert card["export"]["files"]["fb.csv"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert card["devices"][0]["measured"] == 5000 and card["provenance"]["license"] == "MIT"


@pytest.mark.slow
def test_plot_writes_a_png(tmp_path):
    out = tmp_path / "fbnet.png"
    result = cli(
        "dataset", "plot", "help-fbnet", "--out", str(out), *(f"-d{d}" for d in ("pixel3", "fpga", "1080ti_1"))
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000
    bad = cli("dataset", "plot", "help-fbnet", "--out", str(tmp_path / "x.jpg"))
    assert bad.returncode == 1 and "must end in .png" in bad.stderr
