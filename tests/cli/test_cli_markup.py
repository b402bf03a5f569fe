"""What the CLI prints is shown as written: brackets in errors, paths, table cells and help are not rich markup."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BLOCK_TORCH = "import sys; sys.modules['torch'] = None; "


def run(args: list[str], cwd: Path, prelude: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LATBENCH_HOME": str(cwd / "home"), "LATBENCH_CACHE_DIR": str(cwd / "cache"), "COLUMNS": "300"}
    code = prelude + "from latbench.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=120)  # fmt: skip


@pytest.mark.slow
def test_a_missing_extra_keeps_its_brackets(tmp_path):
    result = run(["measure", "--space", "nb201", "--samples", "1", "--out", "r.csv"], tmp_path, BLOCK_TORCH)
    assert result.returncode == 1, result.stderr
    assert "needs torch; install it with: pip install 'latbench[build]'" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


@pytest.mark.slow
def test_an_error_echoing_a_path_with_markup_prints_it_verbatim(tmp_path):
    name = "missing[/x][red][build].csv"
    result = run(["dataset", "import", name, "--space", "nb201"], tmp_path)
    assert result.returncode == 1, result.stderr
    assert f"error: cannot read {name}" in result.stderr
    assert "MarkupError" not in result.stderr and "internal error" not in result.stderr


@pytest.mark.slow
def test_a_table_cell_keeps_its_brackets(tmp_path):
    result = run(["runtimes"], tmp_path, BLOCK_TORCH)
    assert result.returncode == 0, result.stderr
    torch_row = next(line for line in result.stdout.splitlines() if "│ torch " in line)
    assert "pip install 'latbench[build]'" in torch_row


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "shown"),
    [(["predict", "--help"], "'arch<TAB>ms<TAB>[low, high]' per line"),
     (["quickstart", "--help"], "judge it [default: 100; ofa-mbv3: 30].")],
)  # fmt: skip
def test_help_keeps_its_brackets(tmp_path, command: list[str], shown: str):
    result = run(command, tmp_path)
    assert result.returncode == 0, result.stderr
    assert shown in " ".join(line.strip("│ ") for line in result.stdout.splitlines())
    assert "\\[" not in result.stdout
