"""``latbench predictor encodings``: show describes the tables; bad input is a clear error, not a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from latbench.cli.encodings import encodings_app
from latbench.predictor.encodings import EncodingsError
from latbench.spaces import space_names

runner = CliRunner()


@pytest.fixture(autouse=True)
def own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LATBENCH_HOME", str(tmp_path / "home"))


def test_show_json_describes_each_kind_with_its_correlation_to_flops() -> None:
    result = runner.invoke(encodings_app, ["show", "--space", "nb201", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert set(info) == {"zcp", "arch2vec"}
    a2v = info["arch2vec"]
    assert a2v["available"] and a2v["shape"] == [15_625, 16] and a2v["meta"]["seed"] == 0
    assert set(a2v["srcc_vs_flops"]) == set(a2v["names"])
    assert all(-1.0 <= v <= 1.0 for v in a2v["srcc_vs_flops"].values())


@pytest.mark.slow
def test_show_prints_a_table_per_kind() -> None:
    result = runner.invoke(encodings_app, ["show", "--space", "fbnet"])
    assert result.exit_code == 0, result.output
    assert "arch2vec: 5000 archs x 16 features" in result.stdout
    assert "held-out reconstruction" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "--space", "nb101"], "no encodings for search space 'nb101'"),
        (["compute", "--space", "nb201", "--kind", "cate"], "unknown encoding kind 'cate'"),
    ],
)
def test_bad_input_is_one_clear_error(args: list[str], message: str) -> None:
    result = runner.invoke(encodings_app, args)
    assert result.exit_code == 1
    assert isinstance(result.exception, EncodingsError) and message in str(result.exception)


def test_compute_without_a_kind_is_a_usage_error() -> None:
    assert runner.invoke(encodings_app, ["compute", "--space", "nb201"]).exit_code == 2


@pytest.mark.slow
def test_the_latbench_command_prints_one_line_and_exits_1() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "latbench", "predictor", "encodings", "show", "--space", "nb101"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"error: no encodings for search space 'nb101'; choose one of: {', '.join(space_names())}"
    ]
