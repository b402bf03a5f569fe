"""``latbench measure`` as a user runs it: a real process, real exit codes, stdout and stderr kept apart."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from latbench.spaces import get_space
from tests.support.models import FAST_CLI

LATBENCH = [sys.executable, "-c", "from latbench.cli import main; main()"]


def run(args: list[str], cache: Path, **kw) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LATBENCH_CACHE_DIR": str(cache), "COLUMNS": "120"}
    return subprocess.run([*LATBENCH, *args], capture_output=True, text=True, env=env, timeout=300, **kw)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow  # measures in subprocesses
def test_measure_prints_only_the_results_path_on_stdout(tmp_path, artifact_cache):
    out = tmp_path / "r.csv"
    result = run(["measure", "--space", "nb201", "--samples", "2", "--seed", "3", *FAST_CLI, "--out", str(out)],
                 artifact_cache)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    assert "2 architecture(s)" in result.stderr
    got = rows(out)
    low, high = sorted(float(r["latency_ms"]) for r in got)
    assert f"latencies (each a median of its runs) from {low:.3f} to {high:.3f} ms" in result.stderr
    assert [r["arch"] for r in got] == get_space("nb201").sample(2, seed=3)
    assert {r["threads"] for r in got} == {"1"} and {r["batch"] for r in got} == {"1"}


@pytest.mark.parametrize(
    "args",
    [
        ["measure", "--space", "nb201", "--out", "x.csv"],
        ["measure", "--space", "nb201", "--samples", "2", "--arch", "a", "--out", "x.csv"],
        ["measure", "--space", "nb201", "--samples", "0", "--out", "x.csv"],
        ["measure", "--space", "nb201", "--samples", "2", "--threads", "0", "--out", "x.csv"],
        ["measure", "--space", "nb201", "--samples", "2", "--min-time", "5", "--max-time", "1", "--out", "x.csv"],
        ["measure", "--samples", "2", "--out", "x.csv"],
        ["no-such-command"],
    ],
)
@pytest.mark.slow
def test_usage_errors_exit_2(tmp_path, artifact_cache, args):
    result = run(args, artifact_cache, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--space", "nb201", "--arch", "|nor_conv_3x3~0|"], "valid NB201 architecture looks like"),
        (["--space", "darts", "--samples", "1"], "unknown search space 'darts'"),
        (["--space", "nb201", "--samples", "1", "--runtime", "tvm-cuda"], "unknown runtime 'tvm-cuda'"),
        (["--space", "nb201", "--samples", "1", "--provider", "cuda"], "provider 'cuda'"),
        (["--space", "fbnet", "--samples", "1", "--resolution", "4"], "at least 8"),
        (["--space", "nb201", "--samples", "1", "--pin-core", "4096"], "cannot pin to core 4096"),
    ],
)
def test_bad_input_exits_1_with_one_clear_line(tmp_path, artifact_cache, args, message):
    result = run(["measure", *args, "--out", str(tmp_path / "x.csv")], artifact_cache)
    assert result.returncode == 1
    assert message in result.stderr and "error:" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.slow  # measures in subprocesses
def test_the_summary_says_in_plain_words_why_results_are_unstable(tmp_path, artifact_cache):
    """A CV threshold no timing meets makes every result really unstable, whatever the machine's load."""
    out = tmp_path / "r.csv"
    result = run(["measure", "--space", "nb201", "--samples", "2", *FAST_CLI, "--attempts", "1", "--no-reference",
                  "--cv-threshold", "0.0001", "--out", str(out)], artifact_cache)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert {r["stable"] for r in rows(out)} == {"False"}
    text = " ".join(result.stderr.split())
    assert "2 flagged unstable" in text
    # other flags may join high_cv on a noisy machine ("(2 high variation between runs, 1 ...)"); high_cv is certain
    assert "warning: 2 of 2 results are unstable (" in text
    assert re.search(r"unstable \([^)]*\b(2 )?high variation between runs[,)]", text), text
    assert "Re-run when it is idle, or use --wait-idle." in text


@pytest.mark.slow  # measures in subprocesses
def test_wait_idle_waits_out_a_busy_machine_and_says_so(tmp_path, artifact_cache):
    """A competing program busy-loops the whole time: each attempt waits the bound, then measures, and the
    result says the machine was still busy; the summary line explains any unstable result in plain words."""
    loop = "import time\nend = time.monotonic() + 120\nwhile time.monotonic() < end: pass\n"
    hogs = [subprocess.Popen([sys.executable, "-c", loop]) for _ in range(os.cpu_count() or 1)]
    out = tmp_path / "r.csv"
    core = str(min(os.sched_getaffinity(0)))  # a core this runner may use (not always 0)
    try:
        result = run(["measure", "--space", "nb201", "--samples", "1", *FAST_CLI, "--attempts", "1", "--no-reference",
                      "--wait-idle", "--wait-idle-max", "1", "--pin-core", core, "--out", str(out)],
                     artifact_cache)  # fmt: skip
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert result.returncode == 0, result.stderr
    (row,) = rows(out)
    assert "still_busy" in row["flags"].split(",")
    text = " ".join(result.stderr.split())
    if row["stable"] == "False":
        assert "1 of 1 results are unstable" in text and "waited the full --wait-idle time" in text


@pytest.mark.slow  # measures in subprocesses
def test_ctrl_c_keeps_results_and_a_rerun_resumes(tmp_path, artifact_cache):
    out = tmp_path / "r.csv"
    args = ["measure", "--space", "nb201", "--samples", "5", "--seed", "9", "--min-time", "0.4", *FAST_CLI[:2],
            "--out", str(out)]  # fmt: skip
    env = {**os.environ, "LATBENCH_CACHE_DIR": str(artifact_cache)}
    proc = subprocess.Popen([*LATBENCH, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not out.exists() or len(rows(out)) < 2):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "run the same command to resume" in stderr and "Traceback" not in stderr
    kept = rows(out)
    assert 2 <= len(kept) < 5
    result = run(args, artifact_cache)  # the same settings: other ones are refused, never mixed in
    assert result.returncode == 0, result.stderr
    final = rows(out)
    assert [r["arch"] for r in final] == get_space("nb201").sample(5, seed=9)
    assert final[: len(kept)] == kept


@pytest.mark.slow  # exports in a subprocess
def test_ctrl_c_before_any_result_says_nothing_was_written(tmp_path):
    """Interrupted while exporting into an empty cache: no result, no file, and the message says so."""
    out, cache = tmp_path / "int.csv", tmp_path / "cache"
    args = ["measure", "-s", "nb201", "-n", "6", "--seed", "11", "-o", str(out)]
    env = {**os.environ, "LATBENCH_CACHE_DIR": str(cache)}
    proc = subprocess.Popen([*LATBENCH, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (cache.is_dir() and any(cache.iterdir())):  # the first export began
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert not out.exists() and stdout == ""
    assert f"interrupted before any result was written; {out} was not created" in " ".join(stderr.split())
    assert "kept in" not in stderr and "Traceback" not in stderr


def test_the_cache_dir_help_names_the_directory_files_go_to():
    import typer.main

    from latbench.cli import app

    measure = typer.main.get_command(app).commands["measure"]  # type: ignore[attr-defined]
    (option,) = [p for p in measure.params if "--cache-dir" in p.opts]
    assert "~/.cache/latbench/artifacts" in option.help and "LATBENCH_CACHE_DIR" in option.help


@pytest.mark.slow
def test_spaces_and_env_commands(artifact_cache):
    sample = run(["spaces", "sample", "--space", "fbnet", "-n", "3", "--seed", "4"], artifact_cache)
    assert sample.stdout.split() == get_space("fbnet").sample(3, seed=4)
    show = run(["spaces", "show", "--space", "nb201", get_space("nb201").from_index(0)], artifact_cache)
    assert '"arch_index": 0' in show.stdout
    env = run(["env", "--json"], artifact_cache)
    assert '"device_id"' in env.stdout
    version = run(["--version"], artifact_cache)
    assert version.returncode == 0 and version.stdout.strip()
