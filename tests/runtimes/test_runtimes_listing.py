"""``latbench runtimes`` lists every registered runtime and says why one cannot run; importing stays light."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from latbench.agents.runtimes import available_runtimes

REPO = Path(__file__).resolve().parents[2]


def latbench(*args: str, block: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI; ``block`` makes that package unimportable in the child, as if it were not installed."""
    prelude = f"import sys; sys.modules[{block!r}] = None; " if block else ""
    code = prelude + "from latbench.cli import main; sys.argv = ['latbench', *sys.argv[1:]]; main()"
    if not block:
        code = "import sys; " + code
    env = {**os.environ, "COLUMNS": "300"}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO, env=env)


@pytest.mark.slow
def test_every_runtime_is_registered_and_listed() -> None:
    names = {"onnxruntime", "tflite", "tflite-fp16", "tvm", "torch"}
    assert names <= set(available_runtimes())
    done = latbench("runtimes", "--json")
    assert done.returncode == 0, done.stderr
    listed = {r["name"]: r for r in json.loads(done.stdout)}
    assert names <= set(listed)
    assert all(listed[n]["available"] for n in names)
    assert listed["tflite"]["artifact_format"] == "tflite" and listed["tvm"]["artifact_format"] == "onnx"
    assert "no CUDA device" in listed["torch"]["unavailable_providers"]["cuda"]


@pytest.mark.slow
def test_a_missing_package_is_the_reason_shown() -> None:
    done = latbench("runtimes", "--json", block="ai_edge_litert")
    listed = {r["name"]: r for r in json.loads(done.stdout)}
    assert not listed["tflite"]["available"]
    assert "ai-edge-litert" in listed["tflite"]["reason"] and "latbench[tflite]" in listed["tflite"]["reason"]
    table = latbench("runtimes", block="tvm")
    assert table.returncode == 0
    row = next(line for line in table.stdout.splitlines() if " tvm " in line)
    assert " no " in row and "needs apache-tvm" in row


@pytest.mark.parametrize("module", ["tflite", "tvm", "torch", "onnxruntime"])
@pytest.mark.slow
def test_runtime_modules_import_no_engine(module: str) -> None:
    """The registry imports a runtime's module to find it; its engine loads only when the runtime is built."""
    heavy = ("torch", "tensorflow", "tvm", "ai_edge_litert", "latbench.collectors", "latbench.convert")
    code = (
        f"import sys, latbench.agents.runtimes as r; r.get_runtime({module!r})\n"
        f"loaded = [m for m in {heavy!r} if m in sys.modules]\nassert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
