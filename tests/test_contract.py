"""The README's promises: two set-up commands, CI runs the README's test command, the code is ruff clean and
type checks."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    first_block = re.search(r"```(?:bash|sh)?\n(.*?)```", text, re.S)
    assert first_block, "README must open with a code block of set-up commands"
    return [line for line in first_block.group(1).splitlines() if line.strip() and not line.startswith("#")]


def test_readme_opens_with_two_setup_commands():
    commands = readme_commands()
    assert len(commands) == 2
    assert "latbench quickstart" in commands[0] and "pytest" in commands[1]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci


def test_code_is_ruff_clean():
    paths = ["latbench", "tests", "benchmarks"]
    subprocess.run([sys.executable, "-m", "ruff", "check", *paths], cwd=ROOT, check=True)
    subprocess.run([sys.executable, "-m", "ruff", "format", "--check", *paths], cwd=ROOT, check=True)


@pytest.mark.slow
def test_code_type_checks():
    """mypy, with the settings of setup.cfg's ``[mypy]`` section, finds no error (its report is the captured output)."""
    subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, check=True)
