"""int8 precision: a statically quantised ONNX model per architecture, timed for real, recorded as such, and a
clear refusal where a runtime or a model file cannot take it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest

import latbench
from latbench import precision
from latbench.agents.measure import TimingSettings
from latbench.agents.runtimes import get_runtime
from latbench.artifacts import OPSET, ArtifactCache, ArtifactKey
from latbench.errors import LatbenchError, ResultsFileError, RuntimeUnavailable
from tests.support.models import FAST_CLI

FAST = TimingSettings(warmup_runs=2, warmup_time_s=0.02, min_runs=10, min_time_s=0.05)
ARCH = "|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
CLI_RUN = ["-c", "from latbench.cli import main; main()"]


def op_types(path) -> set[str]:
    return {node.op_type for node in onnx.load(str(path)).graph.node}


@pytest.mark.slow  # exports, quantises and times for real
def test_an_int8_architecture_is_a_quantised_model_timed_and_recorded_as_int8(tmp_path, artifact_cache):
    out = tmp_path / "r.csv"
    [row] = latbench.measure("nb201", [ARCH], precision="int8", settings=FAST, out=out, cache_dir=artifact_cache)
    assert row["precision"] == "int8" and row["runtime"] == "onnxruntime" and float(row["latency_ms"]) > 0
    key = ArtifactKey("nb201", ARCH, 1, 32, 10, OPSET, 0)
    cache = ArtifactCache(artifact_cache)
    int8, fp32 = cache.get(key, "int8.onnx"), cache.build(key, "onnx")
    assert int8 is not None and int8.sha256 == row["artifact_sha256"] and int8.path.name.endswith(".int8.onnx")
    assert {"QuantizeLinear", "DequantizeLinear"} <= op_types(int8.path)
    assert not {"QuantizeLinear", "DequantizeLinear"} & op_types(fp32.path)
    assert key.digest("int8.onnx") != key.digest("onnx") and int8.sha256 != fp32.sha256
    assert [r["precision"] for r in latbench.read_results(out)] == ["int8"]
    with pytest.raises(ResultsFileError, match="precision: file has 'int8', this run 'fp32'"):
        latbench.measure("nb201", [ARCH], settings=FAST, out=out, cache_dir=artifact_cache)


@pytest.mark.slow  # quantises twice
def test_quantisation_is_deterministic(tmp_path):
    key = ArtifactKey("nb201", ARCH, 1, 32, 10, OPSET, 0)
    first = ArtifactCache(tmp_path / "a").build(key, "int8.onnx")
    second = ArtifactCache(tmp_path / "b").build(key, "int8.onnx")
    assert first.sha256 == second.sha256


def test_each_runtime_names_the_formats_of_the_precisions_it_runs():
    ort, torch = get_runtime("onnxruntime"), get_runtime("torch")
    assert precision.artifact_format(ort, "fp32") == "onnx"
    assert precision.artifact_format(ort, "int8") == "int8.onnx"
    assert precision.artifact_format(torch, "fp32") == "torch.json"
    with pytest.raises(RuntimeUnavailable, match=r"^precision int8 is not supported by runtime torch"):
        precision.artifact_format(torch, "int8")
    with pytest.raises(LatbenchError, match="unknown precision 'int4'; choose one of: fp32, int8"):
        precision.artifact_format(ort, "int4")
    assert [precision.of_format(f) for f in ("onnx", "int8.onnx", "fp16.tflite", "torch.json")] == [
        "fp32",
        "int8",
        "fp16",
        "fp32",
    ]


def test_combinations_that_do_not_exist_are_refused_before_anything_is_built(tmp_path):
    with pytest.raises(RuntimeUnavailable, match="precision int8 is not supported by runtime torch"):
        latbench.measure("nb201", [ARCH], runtime="torch", precision="int8", cache_dir=tmp_path)
    with pytest.raises(LatbenchError, match="model file is timed at its own precision"):
        latbench.measure(models=[tmp_path / "m.onnx"], precision="int8", cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # a CLI process
def test_the_cli_refuses_an_unsupported_combination_in_one_line(tmp_path):
    out = tmp_path / "r.csv"
    args = ["measure", "-s", "nb201", "--arch", ARCH, "--runtime", "torch", "--precision", "int8", *FAST_CLI]
    result = subprocess.run(
        [sys.executable, *CLI_RUN, *args, "--out", str(out), "--cache-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip() == "error: precision int8 is not supported by runtime torch (it runs: fp32)"
    assert not out.exists()


@pytest.mark.slow  # LiteRT conversion and quantisation
def test_a_litert_int8_model_is_fully_quantised_and_timed(tmp_path, artifact_cache):
    from ai_edge_litert.interpreter import Interpreter

    arch = "|none~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|nor_conv_3x3~0|none~1|skip_connect~2|"
    [row] = latbench.measure(
        "nb201", [arch], runtime="tflite", precision="int8", settings=FAST, cache_dir=artifact_cache
    )
    assert row["precision"] == "int8" and row["runtime"] == "tflite" and float(row["latency_ms"]) > 0
    key = ArtifactKey("nb201", arch, 1, 32, 10, OPSET, 0)
    cache = ArtifactCache(artifact_cache)
    int8, fp32 = cache.get(key, "int8.tflite"), cache.get(key, "tflite")
    assert int8 is not None and fp32 is not None and int8.sha256 == row["artifact_sha256"] != fp32.sha256
    [given] = Interpreter(model_path=str(int8.path)).get_input_details()
    assert given["dtype"] == np.int8 and tuple(given["shape"]) == (1, 3, 32, 32)
