"""Help reads whole at any width: rich's option tables below about 100 columns cut option names, defaults and env
vars ("--host-key-fingerpr…"), so narrower help (an 80-column terminal, or piped to a pager) is click's plain help."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest


def help_text(args: list[str], columns: int | None) -> str:
    env = {key: value for key, value in os.environ.items() if key not in ("COLUMNS", "TERMINAL_WIDTH")}
    if columns is not None:
        env["COLUMNS"] = str(columns)
    result = subprocess.run([sys.executable, "-m", "latbench", *args, "--help"], capture_output=True, text=True,
                            env=env, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def long_options(text: str) -> set[str]:
    return set(re.findall(r"--[a-z][a-z0-9-]*[a-z0-9]", text))


@pytest.mark.slow
@pytest.mark.parametrize("command", [["deploy"], ["agent", "run"], ["measure"], ["collector", "serve"]])
def test_narrow_or_piped_help_shows_every_option_and_env_var_whole(command: list[str]):
    wide = help_text(command, 200)
    assert "╭" in wide and "…" not in wide  # rich where it fits
    for columns in (80, None):  # None: piped, no COLUMNS (rich would take 80)
        narrow = help_text(command, columns)
        assert "…" not in narrow and "╭" not in narrow and "\\[" not in narrow
        assert max(len(line) for line in narrow.splitlines()) <= 80 + 2  # click's formatter wraps to fit
        assert long_options(narrow) == long_options(wide)
        assert set(re.findall(r"LATBENCH_[A-Z_]+", narrow)) == set(re.findall(r"LATBENCH_[A-Z_]+", wide))
