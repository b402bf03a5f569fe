"""Importing tables: round trips are bit-exact, bad files fail clearly and leave the registry as it was."""

from __future__ import annotations

import gzip
import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from latbench import datasets
from latbench.datasets import storage
from tests.datasets.dataset_helpers import cli, shared_table, snapshot


@pytest.fixture(scope="module")
def nb201_part() -> pd.DataFrame:
    """Three real NB201 devices with different, overlapping architectures (so the dataset has NaN holes)."""
    table = shared_table("nb201")
    parts = [
        table[(table["device"] == d) & (table["arch_index"] % k == 0)]
        for d, k in (("raspi4", 50), ("pixel2", 70), ("titan_rtx_1", 90))
    ]
    return pd.concat(parts).sample(frac=1.0, random_state=0)  # shuffled: import must not depend on row order


def write_csv(df: pd.DataFrame, path: Path) -> Path:
    df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_fbnet_round_trip_is_bit_exact(home, tmp_path, suffix):
    original = datasets.load("help-fbnet")
    out = datasets.export(original, "parquet" if suffix == ".parquet" else "csv", tmp_path / f"fb{suffix}")
    back = datasets.import_table(out, "fbnet", name="fb")
    assert back.archs == original.archs and back.device_names == original.device_names
    assert np.array_equal(back.latency, original.latency)
    assert back.content_sha256() == original.content_sha256()


def test_partial_nb201_import_export_import_keeps_holes_and_values(home, tmp_path, nb201_part):
    first = datasets.import_table(write_csv(nb201_part, tmp_path / "part.csv"), "nb201", name="part")
    assert first.device_names == list(dict.fromkeys(nb201_part["device"]))
    assert first.measured("raspi4") == 313 and first.measured("titan_rtx_1") == 174
    assert np.isnan(first.latency).sum() == first.latency.size - len(nb201_part)
    help201 = datasets.load("help-nb201")
    columns = np.searchsorted(help201.arch_indices(), first.arch_indices())
    for device in first.device_names:
        mine = first.vector(device)
        assert np.array_equal(mine[~np.isnan(mine)], help201.vector(device)[columns][~np.isnan(mine)])
    exported = datasets.export(first, "csv", tmp_path / "again.csv")
    second = datasets.import_table(exported, "nb201", name="part")
    assert second.content_sha256() == first.content_sha256()
    assert (tmp_path / "again.card.json").exists() and (tmp_path / "again.card.md").exists()


def test_csv_gz_exports_are_deterministic(tmp_path):
    ds = datasets.load("help-fbnet").select(["pixel3", "eyeriss"])
    a, b = datasets.export(ds, "csv", tmp_path / "a.csv.gz"), datasets.export(ds, "csv", tmp_path / "b.csv.gz")
    assert a.read_bytes() == b.read_bytes()
    assert gzip.decompress(a.read_bytes()).decode().splitlines()[0] == "arch,arch_index,device,latency_ms"


def test_units_identical_duplicates_single_device_and_prefix(home, tmp_path, nb201_part):
    raspi = nb201_part[nb201_part["device"] == "raspi4"]
    seconds = pd.DataFrame({"arch": raspi["arch"], "latency": raspi["latency_ms"] / 1000})
    seconds = pd.concat([seconds, seconds.head(7)])  # identical duplicates are merged, not refused
    path = write_csv(seconds, tmp_path / "pi.csv")
    ds = datasets.import_table(path, "nb201", device="pi", unit="s", prefix="lab-")
    assert ds.device_names == ["lab-pi"] and ds.provenance["identical_duplicates"] == 7
    expected = raspi.sort_values("arch_index")["latency_ms"].to_numpy()
    assert np.allclose(ds.vector("lab-pi"), expected, rtol=1e-6)
    result = cli("dataset", "import", str(path), "--space", "nb201", "--device", "pi", "--unit", "s")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "pi" and "7 duplicate row(s)" in result.stderr


def bad_files(part: pd.DataFrame) -> dict[str, tuple[pd.DataFrame | str, str | None, str]]:
    """name -> (table, unit given by the user, message the error must contain)."""
    head = part.head(20).reset_index(drop=True)
    bad_arch = head.copy()
    bad_arch.loc[[3, 11], "arch"] = ["|nor_conv_3x3~0|", "|conv_7x7~0|+|none~0|none~1|+|none~0|none~1|none~2|"]
    negative, missing = head.copy(), head.copy()
    negative.loc[5, "latency_ms"] = -1.5
    missing.loc[8, "latency_ms"] = np.nan
    mixed = head.rename(columns={"latency_ms": "latency"}).assign(unit=["ms"] * 19 + ["s"])
    conflict = pd.concat([head, head.iloc[[2]].assign(latency_ms=head.loc[2, "latency_ms"] * 2)])
    index = head.copy()
    index.loc[4, "arch_index"] = index.loc[4, "arch_index"] + 1
    return {
        "wrong columns": (head.rename(columns={"device": "hardware"}), None, "no device column 'device'"),
        "bad archs": (bad_arch, None, "2 row(s) of"),
        "negative": (negative, None, "line 7: '-1.5'"),
        "nan": (missing, None, "line 10: ''"),
        "mixed units": (mixed, None, "mixes units"),
        "unit disagrees": (head, "s", "must agree"),
        "no unit": (head.rename(columns={"latency_ms": "latency"}), None, "pass --unit"),
        "conflicting duplicates": (conflict, None, "different latencies"),
        "arch_index": (index, None, "not the official NB201 index"),
        "ragged": ("arch,device,latency_ms\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,x\n", None, "line 2 has 2"),
        "empty": ("", None, "is empty"),
    }


def write_bad(table: pd.DataFrame | str, path: Path) -> Path:
    if isinstance(table, str):
        path.write_text(table)
        return path
    return write_csv(table, path)


def test_bad_files_are_refused_with_the_offending_rows_named(tmp_path, nb201_part):
    messages = {}
    for label, (table, unit, message) in bad_files(nb201_part).items():
        path = write_bad(table, tmp_path / "bad.csv")
        with pytest.raises(datasets.InvalidTable) as refused:
            datasets.import_table(path, "nb201", unit=unit)
        messages[label] = str(refused.value)
        assert message in messages[label], (label, messages[label])
    bad_archs = messages["bad archs"]
    assert "line 5:" in bad_archs and "line 13:" in bad_archs and "valid NB201 architecture" in bad_archs


def test_a_bad_file_is_one_line_on_stderr_and_leaves_the_registry_unchanged(home, tmp_path, nb201_part):
    datasets.save(datasets.import_table(write_csv(nb201_part, tmp_path / "keep.csv"), "nb201", name="keep"))
    before = snapshot(home)
    cases = bad_files(nb201_part)
    for label in ("bad archs", "conflicting duplicates", "empty"):
        path = write_bad(cases[label][0], tmp_path / "bad.csv")
        result = cli("dataset", "import", str(path), "--space", "nb201", "--name", "keep", "--force")
        assert result.returncode == 1, (label, result.stderr)
        assert result.stderr.startswith("error:") and result.stderr.count("\n") == 1, (label, result.stderr)
        assert result.stdout == "" and snapshot(home) == before, label


def test_usage_errors_exit_2(home, tmp_path):
    assert cli("dataset", "import", "x.csv").returncode == 2  # --space missing
    assert cli("dataset", "import", "x.csv", "--space", "nb201", "--unit", "hours").returncode == 2
    assert cli("dataset", "build").returncode == 2
    assert cli("dataset", "export", "help-fbnet", "--format", "xlsx", "--out", str(tmp_path / "x")).returncode == 2
    assert not (home / "datasets").exists()


def test_existing_names_need_force_and_a_failed_save_leaves_nothing(home, tmp_path, nb201_part, monkeypatch):
    path = write_csv(nb201_part, tmp_path / "part.csv")
    assert cli("dataset", "import", str(path), "--space", "nb201").stdout.strip() == "part"
    taken = cli("dataset", "import", str(path), "--space", "nb201")
    assert taken.returncode == 1 and "already exists" in taken.stderr
    before = snapshot(home)

    def fail_midway(ds: datasets.Dataset, directory: Path) -> None:
        (directory / storage.LATENCY_FILE).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(storage, "write", fail_midway)
    with pytest.raises(OSError, match="disk full"):
        datasets.save(datasets.import_table(path, "nb201", name="part"), overwrite=True)
    assert snapshot(home) == before
    assert datasets.load("part").measured("pixel2") == 224


def test_hwnas_bench_pickle_imports_its_nb201_tables(home, tmp_path):
    """A pickle laid out as HW-NAS-Bench-v1_0.pickle, holding the real values HELP copied from it."""
    help201 = datasets.load("help-nb201")
    cifar10 = {f"{d}_latency": help201.vector(d).astype(np.float64).tolist() for d in ("raspi4", "pixel3", "fpga")}
    cifar10 |= {
        "eyeriss_latency": help201.vector("eyeriss").astype(np.float64),
        "fpga_energy": [1.0] * 15625,
        "config": [{"name": "infer.tiny", "C": 16}] * 3,
    }
    path = tmp_path / "HW-NAS-Bench-v1_0.pickle"
    path.write_bytes(pickle.dumps({"nasbench201": {"cifar10": cifar10}, "fbnet": {}}))
    result = cli("dataset", "import", str(path), "--space", "nb201", "--name", "hwnas", "--prefix", "hw_")
    assert result.returncode == 0, result.stderr
    ds = datasets.load("hwnas")
    assert ds.device_names == ["hw_eyeriss", "hw_fpga", "hw_pixel3", "hw_raspi4"]
    for device in ("eyeriss", "fpga", "pixel3", "raspi4"):
        assert np.array_equal(ds.vector(f"hw_{device}"), help201.vector(device))
    assert "GaTech-EIC" in ds.device("hw_raspi4").license
    shown = json.loads(cli("dataset", "show", "hwnas", "--json").stdout)
    assert shown["provenance"]["hwnas_image_dataset"] == "cifar10"


class _Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned",))


def test_a_pickle_that_would_run_code_is_refused(home, tmp_path):
    path = tmp_path / "evil.pickle"
    path.write_bytes(pickle.dumps({"nasbench201": {"cifar10": {"x_latency": _Exploit()}}}))
    result = cli("dataset", "import", str(path), "--space", "nb201", cwd=tmp_path)
    assert result.returncode == 1 and "refusing to load it" in result.stderr
    assert not (tmp_path / "pwned").exists()
    assert not (home / "datasets").exists()
