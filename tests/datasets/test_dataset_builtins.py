"""The built-in HELP datasets: shipped values equal the public tables, load fast, list without a registry copy."""

from __future__ import annotations

import csv
import gzip
import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata

from latbench import datasets
from latbench.datasets.correlation import device_correlations
from latbench.ranking import average_ranks
from tests.datasets.dataset_helpers import SHARED, cli, shared_table


@pytest.fixture(scope="module")
def nb201() -> datasets.Dataset:
    return datasets.load("help-nb201")


@pytest.mark.parametrize(("space", "n_archs"), [("nb201", 15625), ("fbnet", 5000)])
@pytest.mark.slow
def test_every_shipped_value_is_exactly_the_public_one(space, n_archs):
    ds = datasets.load(f"help-{space}")
    table = shared_table(space)
    assert ds.builtin and ds.space == space and ds.latency.shape == (27, n_archs)
    assert ds.device_names == sorted(table["device"].unique())
    assert not np.isnan(ds.latency).any()
    rows = table["device"].map({d: i for i, d in enumerate(ds.device_names)}).to_numpy()
    position = {a: i for i, a in enumerate(ds.archs)}
    cols = table["arch"].map(position).to_numpy()
    assert np.array_equal(ds.latency[rows, cols], table["latency_ms"].to_numpy())
    if space == "fbnet":
        assert list(ds.archs) == list(table[table["device"] == "1080ti_1"].sort_values("arch_index")["arch"])
    else:
        assert np.array_equal(ds.arch_indices(), np.arange(n_archs))
        assert ds.archs[0] == table[table["arch_index"] == 0]["arch"].iloc[0]


def test_help_ofa_is_the_public_ofa_table_bit_for_bit_in_helps_row_order():
    ds = datasets.load("help-ofa")
    with gzip.open(SHARED / "ofa_latency.csv.gz", "rt", newline="") as f:
        rows = list(csv.DictReader(f))
    assert ds.builtin and ds.space == "ofa-mbv3" and ds.latency.shape == (12, 5000) and ds.latency.dtype == np.float64
    assert ds.device_names == list(rows[0])[1:]
    assert list(ds.archs) == [r["arch"] for r in rows]  # row i is HELP's index i
    published = np.array([[float(r[d]) for r in rows] for d in ds.device_names])
    assert np.array_equal(ds.latency, published)
    for example in json.loads((SHARED / "ofa_archs_example.json").read_text())["examples"]:  # HELP's own values
        assert ds.archs[example["row"]] == example["arch"]
        assert {d: ds.vector(d)[example["row"]] for d in ds.device_names} == example["latency_ms"]
    assert ds.device("v100_32").batch == 32 and "HayeonLee" in ds.device("v100_32").license
    assert "w1.2" in ds.provenance["caveat"] and any("Once-for-All" in c for c in ds.provenance["citation"])


def test_hwnas_devices_equal_hw_nas_bench_at_arch_0(nb201):
    arch0 = {d: float(nb201.vector(d)[0]) for d in ("raspi4", "pixel3", "eyeriss", "fpga")}
    assert arch0 == pytest.approx({"raspi4": 10.4820, "pixel3": 3.6058, "eyeriss": 3.6456, "fpga": 2.5730}, abs=1e-4)


def test_device_metadata_license_and_notice(nb201):
    raspi4, gpu = nb201.device("raspi4"), nb201.device("1080ti_256")
    assert "HW-NAS-Bench" in raspi4.source and "GaTech-EIC" in raspi4.license
    assert gpu.batch == 256 and "HayeonLee" in gpu.license
    assert nb201.device("gold_6226").batch is None  # not stated by the source: not invented
    provenance = nb201.provenance
    assert provenance["kind"] == "builtin" and "Permission is hereby granted" in provenance["notice"]
    assert any("HELP" in c for c in provenance["citation"])


@pytest.mark.slow
def test_correlations_reproduce_the_published_spearman_matrix(nb201):
    published = pd.read_csv(SHARED / "nb201_spearman.csv", index_col="device")
    corr = device_correlations(nb201)
    ours = pd.DataFrame(corr.srcc, index=corr.devices, columns=corr.devices).loc[published.index, published.columns]
    assert corr.n_archs == 15625
    assert np.abs(ours.to_numpy() - published.to_numpy()).max() <= 5.0001e-5  # published to 4 decimals


def test_average_ranks_match_scipy_on_tied_whole_millisecond_data(nb201):
    pixel2 = nb201.vector("pixel2").astype(np.float64)
    assert len(np.unique(pixel2)) < 100  # whole milliseconds: many ties
    assert np.array_equal(average_ranks(pixel2), rankdata(pixel2))


@pytest.mark.slow
def test_builtins_list_without_a_registry_copy_and_cannot_be_removed(home):
    listed = json.loads(cli("dataset", "list", "--json").stdout)
    assert [(d["name"], d["builtin"], len(d["devices"])) for d in listed] == [
        ("help-nb201", True, 27),
        ("help-fbnet", True, 27),
        ("help-ofa", True, 12),
        ("here-nb201-int8", True, 2),
        ("here-fbnet-int8", True, 2),
    ]
    assert not (home / "datasets").exists()
    refused = cli("dataset", "rm", "help-nb201")
    assert refused.returncode == 1 and "built in" in refused.stderr and "Traceback" not in refused.stderr
    shown = json.loads(cli("dataset", "show", "help-fbnet", "--json").stdout)
    assert shown["n_archs"] == 5000 and {d["coverage"] for d in shown["devices"]} == {1.0}


def test_a_damaged_data_file_is_refused(home, tmp_path):
    ds = datasets.load("help-fbnet").select(["pixel3", "raspi4"], name="two")
    path = datasets.save(ds)
    data = bytearray((path / "latency.npz").read_bytes())
    data[-40] ^= 0xFF
    (path / "latency.npz").write_bytes(bytes(data))
    with pytest.raises(datasets.DatasetError, match="does not match its card"):
        datasets.load("two")
