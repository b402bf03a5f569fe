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
from latbench.datasets.tables import read_table
from latbench.spaces import get_space
from tests.datasets.dataset_helpers import SHARED, cli, shared_table, snapshot


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
@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_usage_errors_exit_2(home, tmp_path):
    assert cli("dataset", "import", "x.csv").returncode == 2  # --space missing
    assert cli("dataset", "import", "x.csv", "--space", "nb201", "--unit", "hours").returncode == 2
    assert cli("dataset", "build").returncode == 2
    assert cli("dataset", "export", "help-fbnet", "--format", "xlsx", "--out", str(tmp_path / "x")).returncode == 2
    assert not (home / "datasets").exists()


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_pickle_that_would_run_code_is_refused(home, tmp_path):
    path = tmp_path / "evil.pickle"
    path.write_bytes(pickle.dumps({"nasbench201": {"cifar10": {"x_latency": _Exploit()}}}))
    result = cli("dataset", "import", str(path), "--space", "nb201", cwd=tmp_path)
    assert result.returncode == 1 and "refusing to load it" in result.stderr
    assert not (tmp_path / "pwned").exists()
    assert not (home / "datasets").exists()


WIDE_DEVICES = ["raspi4", "pixel2", "titan_rtx_1"]


@pytest.fixture(scope="module")
def nb201_wide() -> pd.DataFrame:
    """The shipped NB201 table as a wide table for three devices: a row per cell, a column per device, shuffled."""
    table = shared_table("nb201")
    table = table[table["device"].isin(WIDE_DEVICES)]
    wide = table.pivot(index="arch", columns="device", values="latency_ms")[WIDE_DEVICES].reset_index()
    return wide.sample(frac=1.0, random_state=1).reset_index(drop=True)


def write_wide(df: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)  # pandas compresses .csv.gz by its suffix
    return path


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
@pytest.mark.slow
def test_a_wide_table_is_detected_and_round_trips_bit_for_bit(home, tmp_path, nb201_wide, suffix):
    expected = datasets.load("help-nb201").select(WIDE_DEVICES, name="wide")
    path = write_wide(nb201_wide, tmp_path / f"wide{suffix}")
    ds = datasets.import_table(path, "nb201", unit="ms", name="wide")
    assert ds.device_names == WIDE_DEVICES and ds.archs == expected.archs
    assert np.array_equal(ds.latency, expected.latency)
    assert ds.provenance["layout"] == "wide" and ds.provenance["rows"] == 15625
    fmt = "parquet" if suffix == ".parquet" else "csv"
    exported = datasets.export(ds, fmt, tmp_path / f"again{suffix}", wide=True)
    back = datasets.import_table(exported, "nb201", name="wide")  # the export's unit column states ms
    assert back.content_sha256() == expected.content_sha256()
    long_of_original = datasets.export(expected, "csv", tmp_path / "a.csv").read_bytes()
    assert datasets.export(back, "csv", tmp_path / "b.csv").read_bytes() == long_of_original


@pytest.mark.slow
def test_wide_holes_are_partial_coverage_like_absent_long_rows(home, tmp_path, nb201_part):
    long = datasets.import_table(write_csv(nb201_part, tmp_path / "long.csv"), "nb201", name="p")
    wide = nb201_part.pivot(index="arch", columns="device", values="latency_ms").reset_index()
    wide = wide[["arch", *long.device_names]]
    assert wide.isna().any().any()  # pandas writes the holes as empty cells
    ds = datasets.import_table(write_csv(wide, tmp_path / "wide.csv"), "nb201", unit="ms", name="p")
    assert ds.content_sha256() == long.content_sha256()
    assert ds.measured("raspi4") == 313 and ds.measured("titan_rtx_1") == 174

    datasets.save(ds)
    out = tmp_path / "wide-export.csv"
    exported = cli("dataset", "export", "p", "--format", "csv", "--wide", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    assert out.read_text().splitlines()[0] == "arch,arch_index,unit," + ",".join(long.device_names)
    cells = pd.read_csv(out)[long.device_names]
    assert cells.isna().sum().sum() == np.isnan(long.latency).sum()  # a pair not measured stays an empty cell
    card = json.loads((tmp_path / "wide-export.card.json").read_text())
    assert "one column per device" in card["export"]["layout"]
    imported = cli("dataset", "import", str(out), "--space", "nb201", "--name", "q")
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == "q" and "duplicate" not in imported.stderr
    assert datasets.load("q").content_sha256() == long.content_sha256()


def test_wide_index_columns_units_and_forced_wide(home, tmp_path, nb201_wide):
    head = nb201_wide.head(40).reset_index(drop=True)
    expected = datasets.import_table(write_csv(head, tmp_path / "plain.csv"), "nb201", unit="ms")
    head.to_csv(tmp_path / "indexed.csv")  # pandas' unnamed index column: row numbers, ignored
    assert datasets.import_table(tmp_path / "indexed.csv", "nb201", unit="ms").content_sha256() == (
        expected.content_sha256()
    )
    official = head.assign(arch_index=[get_space("nb201").index(a) for a in head["arch"]])
    assert datasets.import_table(
        write_csv(official, tmp_path / "official.csv"), "nb201", unit="ms"
    ).content_sha256() == (expected.content_sha256())
    micro = head.assign(**{d: head[d] * 1000 for d in WIDE_DEVICES}, unit="us")
    ds = datasets.import_table(write_csv(micro, tmp_path / "us.csv"), "nb201")
    assert ds.provenance["unit"] == "us" and np.allclose(ds.latency, expected.latency, rtol=1e-12)
    forced = head.rename(columns={"pixel2": "latency"})  # a latency column: read as wide only when forced
    ds = datasets.import_table(write_csv(forced, tmp_path / "forced.csv"), "nb201", unit="ms", wide=True, prefix="x-")
    assert ds.device_names == ["x-raspi4", "x-latency", "x-titan_rtx_1"]
    assert np.array_equal(ds.latency, expected.latency)


def test_fbnet_wide_rows_follow_arch_index(home, tmp_path):
    fbnet = datasets.load("help-fbnet").select(["pixel3", "eyeriss"])
    table = pd.DataFrame({"arch": fbnet.archs, "arch_index": range(len(fbnet.archs))})
    table = table.assign(pixel3=fbnet.vector("pixel3"), eyeriss=fbnet.vector("eyeriss")).iloc[::-1]
    ds = datasets.import_table(write_csv(table, tmp_path / "fb.csv.gz"), "fbnet", unit="ms", name=fbnet.name)
    assert ds.content_sha256() == fbnet.content_sha256()
    exported = datasets.export(ds, "parquet", tmp_path / "fb.parquet", wide=True)
    assert datasets.import_table(exported, "fbnet").content_sha256() == fbnet.content_sha256()


def bad_wide_files(wide: pd.DataFrame) -> dict[str, tuple[pd.DataFrame | str, bool, str]]:
    """name -> (table, whether --wide is given, message the error must contain)."""
    head = wide.head(12).astype({d: object for d in WIDE_DEVICES}).reset_index(drop=True)

    def with_cell(row: int, column: str, value: object) -> pd.DataFrame:
        table = head.copy()
        table.loc[row, column] = value
        return table

    arch = head.loc[2, "arch"]
    return {
        "text, detected": (with_cell(3, "pixel2", "n/a"), False, "line 5, column 'pixel2' is not a number: 'n/a'"),
        "text, forced": (with_cell(3, "pixel2", "n/a"), True, "line 5, column 'pixel2': 'n/a'"),
        "negative": (with_cell(6, "raspi4", -2.5), False, "line 8, column 'raspi4': '-2.5'"),
        "zero": (with_cell(0, "titan_rtx_1", 0), False, "line 2, column 'titan_rtx_1': '0'"),
        "nan text": (with_cell(1, "raspi4", "NaN"), True, "line 3, column 'raspi4': 'NaN'"),
        "duplicate arch": (pd.concat([head, head.iloc[[2]]]), False, f"line 14: {arch} as on line 4"),
        "empty column": (head.assign(pixel2=None), False, "without a single latency: 'pixel2'"),
        "empty row": (head.assign(**{d: [None] + [1.0] * 11 for d in WIDE_DEVICES}), False, "line 2: "),
        "device name": (head.rename(columns={"pixel2": "pixel 2"}), False, "'pixel 2'"),
        "bad arch": (with_cell(9, "arch", "|none~0|"), False, "1 row(s) of"),
        "mixed units": (head.assign(unit=["ms"] * 11 + ["s"]), False, "mixes units"),
        "unit disagrees": (head.assign(unit="s"), False, "must agree"),
        "device column": (head.assign(device="x"), True, "column 'device': 'x'"),
        "no arch column": (head.rename(columns={"arch": "cell"}), True, "no column 'arch'"),
    }


def test_bad_wide_files_are_refused_naming_rows_and_columns(tmp_path, nb201_wide):
    for label, (table, wide, message) in bad_wide_files(nb201_wide).items():
        path = write_bad(table, tmp_path / "bad.csv")
        with pytest.raises(datasets.InvalidTable) as refused:
            datasets.import_table(path, "nb201", unit="ms", wide=wide)
        assert message in str(refused.value), (label, str(refused.value))
    text = write_bad(bad_wide_files(nb201_wide)["text, detected"][0], tmp_path / "text.csv")
    with pytest.raises(datasets.InvalidTable, match=r"has no latency column.*or pass --wide"):
        datasets.import_table(text, "nb201", unit="ms")
    with pytest.raises(datasets.InvalidTable, match="pass --unit"):
        datasets.import_table(write_csv(nb201_wide.head(3), tmp_path / "unitless.csv"), "nb201")
    with pytest.raises(datasets.InvalidTable, match="for long tables"):
        datasets.import_table(text, "nb201", unit="ms", wide=True, latency_column="raspi4")


def test_long_tables_missing_a_column_keep_their_errors(tmp_path, nb201_part):
    head = nb201_part.head(5).rename(columns={"latency_ms": "time"})
    with pytest.raises(datasets.InvalidTable, match=r"has no latency column.*it has a device column 'device'"):
        datasets.import_table(write_csv(head, tmp_path / "t.csv"), "nb201")
    single = head[["arch", "time"]]
    with pytest.raises(datasets.InvalidTable, match="has no latency column"):
        datasets.import_table(write_csv(single, tmp_path / "s.csv"), "nb201", device="pi")


@pytest.mark.slow
def test_a_bad_wide_file_is_one_line_and_leaves_the_registry_unchanged(home, tmp_path, nb201_wide):
    datasets.save(datasets.import_table(write_csv(nb201_wide.head(9), tmp_path / "keep.csv"), "nb201", unit="ms"))
    before = snapshot(home)
    cases = bad_wide_files(nb201_wide)
    for label in ("negative", "duplicate arch", "empty column"):
        path = write_bad(cases[label][0], tmp_path / "bad.csv")
        result = cli("dataset", "import", str(path), "-s", "nb201", "--unit", "ms", "--name", "keep", "--force")
        assert result.returncode == 1, (label, result.stderr)
        assert result.stderr.startswith("error:") and result.stderr.count("\n") == 1, (label, result.stderr)
        assert result.stdout == "" and snapshot(home) == before, label


@pytest.mark.slow
def test_wide_export_refusals(home, tmp_path, nb201_part):
    raspi = nb201_part[nb201_part["device"] == "raspi4"][["arch", "latency_ms"]]
    datasets.save(datasets.import_table(write_csv(raspi, tmp_path / "u.csv"), "nb201", device="unit", name="u"))
    clash = cli("dataset", "export", "u", "--format", "csv", "--wide", "--out", str(tmp_path / "u-wide.csv"))
    assert clash.returncode == 1 and "'unit' cannot be columns of a wide table" in clash.stderr
    assert not (tmp_path / "u-wide.csv").exists()
    help_wide = cli("dataset", "export", "u", "--format", "help", "--wide", "--out", str(tmp_path / "h"))
    assert help_wide.returncode == 1 and "--wide is for the csv and parquet formats" in help_wide.stderr


@pytest.mark.slow
def test_ofa_arch_strings_with_commas_survive_parsing(tmp_path):
    """The shared OFA table (quoted arch strings with commas) parses as a wide table of 12 devices; no OFA space
    exists here, so importing it under FBNet is refused, naming each whole arch string."""
    path = SHARED / "ofa_latency.csv.gz"
    table = read_table(path)
    expected = pd.read_csv(path)
    assert list(table.columns) == list(expected.columns) and len(table.columns) == 13
    assert table.columns["arch"] == expected["arch"].tolist()
    assert table.columns["arch"][0] == (
        "ks=7,5,5,5,7,7,5,7,5,7,3,7,5,3,7,3,5,3,5,3|e=6,4,4,6,6,3,4,3,3,6,3,3,3,6,3,4,6,4,3,6|d=2,2,2,2,3|r=204"
    )
    result = cli("dataset", "import", str(path), "--space", "fbnet", "--unit", "ms")
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert f"5000 row(s) of {path} have invalid fbnet architectures: line 2: '{table.columns['arch'][0]}'" in (
        result.stderr
    )
