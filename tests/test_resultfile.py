"""Results files: appended as rows finish, torn lines dropped, mixed settings refused, types round-trip."""

from __future__ import annotations

import csv

import pytest

from latbench.errors import ResultsFileError
from latbench.resultfile import ResultsFile, read_results, write_results


def row(arch: str, batch: int = 1, **extra: object) -> dict[str, object]:
    return {
        "arch": arch,
        "arch_index": 7,
        "space": "nb201",
        "batch": batch,
        "latency_ms": 1.25,
        "stable": False,
        "flags": "high_cv",
        "env_governor": None,
        "times_ms": [1.0, 1.5, 1.25],
        **extra,
    }


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_rows_round_trip_with_types(tmp_path, suffix):
    path = tmp_path / f"r{suffix}"
    f = ResultsFile(path)
    f.append(row("a"))
    f.append(row("b"))
    rows = read_results(path)
    assert [r["arch"] for r in rows] == ["a", "b"]
    assert rows[0]["batch"] == 1 and rows[0]["arch_index"] == 7
    assert rows[0]["latency_ms"] == 1.25 and rows[0]["stable"] is False
    assert rows[0]["times_ms"] == [1.0, 1.5, 1.25]
    assert rows[0]["env_governor"] is None
    assert ResultsFile(path).done() == {"a", "b"}


def test_a_torn_last_line_is_dropped_and_appending_continues(tmp_path):
    path = tmp_path / "r.csv"
    ResultsFile(path).append(row("a"))
    ResultsFile(path).append(row("b"))
    with path.open("ab") as f:
        f.write(b'c,7,nb201,1,1.3,False,"hi')  # a crash in the middle of writing row c
    f = ResultsFile(path)
    assert f.done() == {"a", "b"}
    f.append(row("c"))
    assert [r["arch"] for r in read_results(path)] == ["a", "b", "c"]


def test_mixing_settings_is_refused_with_the_difference(tmp_path):
    path = tmp_path / "r.csv"
    ResultsFile(path).append(row("a"))
    f = ResultsFile(path)
    f.check_compatible({"space": "nb201", "batch": 1})
    with pytest.raises(ResultsFileError, match="batch: file has 1, this run 8"):
        f.check_compatible({"space": "nb201", "batch": 8})


def test_bad_paths_are_clear_errors(tmp_path):
    with pytest.raises(ResultsFileError, match=r"must end in \.csv or \.parquet"):
        ResultsFile(tmp_path / "r.txt")
    with pytest.raises(ResultsFileError, match="does not exist"):
        read_results(tmp_path / "missing.csv")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(ResultsFileError, match="cannot read"):
        ResultsFile(tmp_path / "broken.parquet")


def test_a_fast_model_with_many_timed_runs_reads_back(tmp_path):
    path = tmp_path / "r.csv"
    times = [0.011] * 50_000  # a 0.01 ms model timed for half a second: a cell far over csv's default limit
    ResultsFile(path).append(row("a", times_ms=times))
    assert read_results(path)[0]["times_ms"] == times


FORMULAS = ['=HYPERLINK("http://example.com","x")', "+1+1", "-2+3", "@SUM(A1:A9)", "'quoted", "\tx", "plain"]


def test_text_cells_a_spreadsheet_would_run_are_written_inert_and_read_back(tmp_path):
    appended, written = tmp_path / "appended.csv", tmp_path / "written.csv"
    rows = [row(name, env_governor=name, latency_ms=-1.5, arch_index=-3) for name in FORMULAS]
    for r in rows:
        ResultsFile(appended).append(r)
    write_results(written, rows)
    for path in (appended, written):
        cells = [line[:2] for line in csv.reader(path.open(newline=""))][1:]
        assert [arch for arch, _ in cells] == [name if name == "plain" else "'" + name for name in FORMULAS]
        assert [index for _, index in cells] == ["-3"] * len(FORMULAS), "numbers are never quoted"
        assert ",-1.5," in path.read_text()
        assert read_results(path) == rows


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_file_of_an_older_latbench_takes_rows_with_new_columns_its_old_rows_left_empty(tmp_path, suffix):
    path = tmp_path / f"r{suffix}"
    ResultsFile(path).append(row("a"))
    f = ResultsFile(path)
    f.append(row("b", load_ms=12.5, peak_rss_mb=80.0))
    rows = read_results(path)
    assert [r["arch"] for r in rows] == ["a", "b"] and rows[0]["times_ms"] == [1.0, 1.5, 1.25]
    assert (rows[0]["load_ms"], rows[1]["load_ms"], rows[1]["peak_rss_mb"]) == (None, 12.5, 80.0)
    ResultsFile(path).append(row("c", load_ms=1.0, peak_rss_mb=2.0))
    assert [r["arch"] for r in read_results(path)] == ["a", "b", "c"]


def test_a_file_with_columns_this_latbench_does_not_write_is_still_refused(tmp_path):
    path = tmp_path / "r.csv"
    ResultsFile(path).append(row("a", old_column=1))
    with pytest.raises(ResultsFileError, match="other columns"):
        ResultsFile(path).append(row("b"))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_an_inline_profile_is_written_beside_the_file_and_the_row_names_it(tmp_path, suffix):
    from latbench import profiles

    profile = profiles.OpProfile("onnxruntime", "cpu", 5, [profiles.OpTime("conv_1", "Conv", 0.5)])
    path = tmp_path / f"r{suffix}"
    write_results(path, [row("a", profile=profile.as_dict()), row("b", profile=None)])
    a, b = read_results(path)
    assert b["profile"] is None and str(a["profile"]).endswith(".json.gz")
    assert profiles.load(path, a) == profile and profiles.load(path, b) is None
    (profiles.profiles_dir(path) / str(a["profile"])).unlink()
    with pytest.raises(profiles.ProfileError, match="the profile of 'a' is missing"):
        profiles.load(path, a)
