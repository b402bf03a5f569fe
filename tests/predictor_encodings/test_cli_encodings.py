"""``latbench predictor encodings``: show describes the tables; bad input is a clear error, not a traceback."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from latbench.cli.encodings import encodings_app
from latbench.predictor.encodings import EncodingsError, arch2vec, compute, load
from latbench.spaces import get_space, space_names

runner = CliRunner()
LATBENCH = [sys.executable, "-c", "from latbench.cli import main; main()"]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


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


@pytest.mark.slow  # computes proxies and trains arch2vec, on a few architectures
@pytest.mark.parametrize("space", space_names())
def test_show_advises_only_commands_that_work(space: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where show says a table is missing, the command it gives computes it (here for 3 architectures)."""
    every = compute.default_archs
    monkeypatch.setattr(compute, "default_archs", lambda name: every(name)[:3])
    monkeypatch.setattr(arch2vec, "EXTRA_SAMPLED", 30)
    before = json.loads(runner.invoke(encodings_app, ["show", "--space", space, "--json"]).stdout)
    missing = [kind for kind, table in before.items() if not table["available"]]
    for kind in missing:
        advice = before[kind]["error"].split("compute them with: latbench predictor encodings ")[1].split()
        assert advice == ["compute", "--space", space, "--kind", kind]
        result = runner.invoke(encodings_app, advice)
        assert result.exit_code == 0, result.output
    after = json.loads(runner.invoke(encodings_app, ["show", "--space", space, "--json"]).stdout)
    assert all(table["available"] for table in after.values())
    for kind in missing:
        assert after[kind]["n_archs"] == 3 and all(abs(v) <= 1 for v in after[kind]["srcc_vs_flops"].values())
    if "zcp" in missing:
        get_space(space).validate_resolution(after["zcp"]["meta"]["resolution"])


def read_terminal(fd: int, seconds: float) -> str:
    """What the process wrote to its terminal within ``seconds`` ("" once it closed it)."""
    if not select.select([fd], [], [], seconds)[0]:
        return ""
    try:
        return os.read(fd, 65536).decode(errors="replace")
    except OSError:  # the process closed the terminal
        return ""


@pytest.mark.slow  # a real process computing proxies
def test_ctrl_c_keeps_the_rows_computed_so_far_and_says_how_to_resume(tmp_path: Path) -> None:
    """Interrupted long before its first checkpoint, compute still saves the rows its progress bar showed."""
    terminal, replica = pty.openpty()  # stderr a terminal, so the progress bar is drawn as rows finish
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "200"}
    args = ["predictor", "encodings", "compute", "--space", "nb201", "--kind", "zcp", "--out", str(tmp_path)]
    proc = subprocess.Popen([*LATBENCH, *args], stdout=subprocess.PIPE, stderr=replica, text=True, env=env)
    os.close(replica)
    screen, shown = "", 0
    deadline = time.monotonic() + 120
    while shown < 3 and time.monotonic() < deadline and proc.poll() is None:
        screen += read_terminal(terminal, 0.1)
        shown = max([0, *(int(n) for n in re.findall(r"(\d+)/15625", screen))])
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=60)
    while chunk := read_terminal(terminal, 1):
        screen += chunk
    os.close(terminal)
    text = ANSI.sub("", screen)
    assert proc.returncode == 130, text
    assert stdout == "" and "Traceback" not in text
    saved = load("nb201", "zcp", path=tmp_path / "nb201-zcp.partial.npz")
    assert 3 <= shown <= len(saved.archs)
    line = f"interrupted: {len(saved.archs)} of 15625 rows kept in {tmp_path / 'nb201-zcp.partial.npz'}"
    assert f"{line}; run the same command to resume" in text
