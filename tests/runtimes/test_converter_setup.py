"""The LiteRT converter's environment: ``latbench runtimes`` says whether it is set up, ``latbench setup converter``
and the first conversion set it up, and a set-up that cannot install leaves a clear error and nothing behind."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from latbench.convert.environment import NOT_SET_UP, PYTHON_ENV, STAMP, requirements

REPO = Path(__file__).resolve().parents[2]
MACHINE_CONVERTER = Path.home() / ".local" / "share" / "latbench" / "convert-venv" / "bin" / "python"
"""The converter ``scripts/test-deps.sh`` sets up for the test suite."""
FAST = ["--min-runs", "5", "--min-time", "0", "--warmup-runs", "1", "--warmup-time", "0", "--no-reference"]


def latbench(*args: str, home: Path, python: str = sys.executable, **env: str) -> subprocess.CompletedProcess[str]:
    """The CLI of this checkout in a child with ``home`` as ``LATBENCH_HOME`` (and artifact cache below it)."""
    environ = {k: v for k, v in os.environ.items() if k != PYTHON_ENV}
    environ.update(
        LATBENCH_HOME=str(home),
        LATBENCH_CACHE_DIR=str(home / "artifacts"),
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
        COLUMNS="300",
        **env,
    )
    return subprocess.run([python, "-m", "latbench", *args], capture_output=True, text=True, cwd=home, env=environ)


def conversion(home: Path, **env: str) -> dict[str, str | None]:
    done = latbench("runtimes", "--json", home=home, **env)
    assert done.returncode == 0, done.stderr
    return {r["name"]: r["conversion"] for r in json.loads(done.stdout)}


@pytest.mark.slow
def test_runtimes_say_whether_the_converter_is_set_up(tmp_path: Path) -> None:
    listed = conversion(tmp_path)
    assert listed["tflite"] == listed["tflite-fp16"] == NOT_SET_UP
    assert listed["onnxruntime"] is None and listed["torch"] is None and listed["tvm"] is None
    assert "latbench setup converter" in NOT_SET_UP

    table = latbench("runtimes", home=tmp_path)
    row = next(line for line in table.stdout.splitlines() if " tflite " in line)
    assert "not set up: run `latbench setup converter`" in row

    no_converter = conversion(tmp_path, **{PYTHON_ENV: sys.executable})["tflite"]
    assert no_converter == f"not usable: {PYTHON_ENV}={sys.executable} has no litert-torch"
    if not MACHINE_CONVERTER.exists():
        pytest.skip("no converter environment on this machine: scripts/test-deps.sh sets one up")
    ready = conversion(tmp_path, **{PYTHON_ENV: str(MACHINE_CONVERTER)})
    assert ready["tflite"] == ready["tflite-fp16"] == f"ready ({MACHINE_CONVERTER})"


def test_the_requirements_pin_this_environments_torch() -> None:
    import torch

    pins = requirements()
    assert f"torch=={torch.__version__}" in pins
    assert any(pin.startswith("litert-torch==") for pin in pins)
    assert any(pin.startswith("ai-edge-litert==") for pin in pins)


@pytest.mark.parametrize("command", ["setup", "measure"])
@pytest.mark.slow
def test_a_setup_that_cannot_install_says_how_to_retry_and_leaves_nothing(tmp_path: Path, command: str) -> None:
    """No package index (pip's configuration ignored, no index, an empty wheel folder): explicitly, and on the
    first conversion a measurement needs."""
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    offline = {"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(empty)}
    if command == "setup":
        done = latbench("setup", "converter", home=home, **offline)
    else:
        done = latbench(
            "measure", "--space", "nb201", "--samples", "1", "--runtime", "tflite", "--out", "x.csv", *FAST,
            home=home, **offline,
        )  # fmt: skip
    venv = home / "convert-venv"
    assert done.returncode == 1, done.stdout + done.stderr
    assert "setting up the LiteRT converter (one time, about" in done.stderr and str(venv) in done.stderr
    error = done.stderr[done.stderr.index("error: ") :]
    assert error.startswith(f"error: cannot set up the LiteRT converter in {venv}: pip install failed (exit 1):")
    assert "No matching distribution found for litert-torch" in error
    assert "run `latbench setup converter`" in error and "Traceback" not in done.stderr
    assert not venv.exists()
    assert [p.name for p in home.iterdir() if p.name != "artifacts"] == ["convert-venv.lock"]
    assert not (home / "x.csv").exists()
    assert conversion(home)["tflite"] == NOT_SET_UP


@pytest.mark.slow
def test_the_first_tflite_measurement_sets_up_the_converter_from_inside_a_venv(tmp_path: Path) -> None:
    """The README's path: ``latbench measure --runtime tflite`` right after installing, here from a venv (whose
    packages the converter's venv must see too: ``--system-site-packages`` alone would miss them); then the
    converter is ready and setting it up again does nothing."""
    outer = tmp_path / "outer"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(outer)], check=True)
    site = subprocess.run(
        [outer / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "only_in_the_outer_venv.py").write_text("WHERE = 'outer'\n")
    home = tmp_path / "home"
    home.mkdir()
    python = str(outer / "bin" / "python")

    done = latbench("measure", "--space", "nb201", "--samples", "1", "--runtime", "tflite", "--out", "x.csv", *FAST,
                    home=home, python=python)  # fmt: skip
    assert done.returncode == 0, done.stderr
    venv = home / "convert-venv"
    assert "setting up the LiteRT converter (one time, about" in done.stderr and str(venv) in done.stderr
    with (home / "x.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 1 and rows[0]["runtime"] == "tflite" and float(rows[0]["latency_ms"]) > 0
    assert (venv / STAMP).is_file()
    assert conversion(home, python=python)["tflite"] == f"ready ({venv / 'bin' / 'python'})"

    code = "import only_in_the_outer_venv as m, typing_extensions as t; print(m.WHERE, t.__file__)"
    seen = subprocess.run(
        [venv / "bin" / "python", "-c", code],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert seen[0] == "outer" and seen[1].startswith(str(venv))  # its own typing-extensions comes first

    again = latbench("setup", "converter", home=home, python=python)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == str(venv / "bin" / "python") and "setting up" not in again.stderr
