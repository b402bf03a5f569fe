"""``latbench measure --model`` as a user runs it on model files exported from PyTorch: real processes, real
runtimes (onnxruntime, tvm, tflite), every way a file can be refused."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from latbench.convert.environment import ensure_converter
from latbench.hashing import sha256_file
from tests.support.modelfiles import (
    mobilenet_onnx,
    mobilenet_tflite,
    outside_data_onnx,
    resnet_onnx,
    transformer_onnx,
    unsupported_op_onnx,
)
from tests.support.models import FAST_CLI

LATBENCH = [sys.executable, "-c", "from latbench.cli import main; main()"]
FAST = [*FAST_CLI, "--min-runs", "5"]


def run(args: list[str], cache: Path, tvm_cache: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LATBENCH_CACHE_DIR": str(cache), "COLUMNS": "200"}
    if tvm_cache is not None:
        env["LATBENCH_TVM_CACHE"] = str(tvm_cache)
    return subprocess.run([*LATBENCH, "measure", *args], capture_output=True, text=True, env=env, timeout=900)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The three networks and one file of each kind that must be refused, in one folder."""
    root = tmp_path_factory.mktemp("user")
    folder = root / "models"
    folder.mkdir()
    made = {
        "mobilenet": mobilenet_onnx(folder / "mobilenet.onnx"),
        "resnet": resnet_onnx(folder / "resnet.onnx"),
        "bert": transformer_onnx(folder / "bert.onnx"),
        "unsupported": unsupported_op_onnx(folder / "frobnicate.onnx"),
        "outside": outside_data_onnx(folder / "outside.onnx"),
        "text": folder / "notes.onnx",
        "truncated": folder / "truncated.onnx",
    }
    made["text"].write_text("a text file, not a model\n")
    made["truncated"].write_bytes(made["resnet"].read_bytes()[:5000])
    return made


@pytest.mark.slow
def test_three_networks_with_onnxruntime_token_ids_included(tmp_path, artifact_cache, models):
    out = tmp_path / "r.csv"
    paths = [models["mobilenet"], models["resnet"], models["bert"]]
    args = [a for p in paths for a in ("--model", str(p))]
    result = run([*args, "--input", "input_ids:1x32", *FAST, "--out", str(out)], artifact_cache)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    assert "3 model(s), 3 measured now" in result.stderr
    got = rows(out)
    assert [r["arch"] for r in got] == ["mobilenet.onnx", "resnet.onnx", "bert.onnx"]
    assert [r["artifact_sha256"] for r in got] == [sha256_file(p) for p in paths]
    assert [r["input_shapes"] for r in got] == ["image:1x3x32x32", "pixels:1x3x32x32", "input_ids:1x32"]
    for r in got:
        assert (r["space"], r["runtime"], r["batch"], r["opset"]) == ("model", "onnxruntime", "1", "17")
        assert r["arch_index"] == r["resolution"] == r["classes"] == ""
        assert float(r["latency_ms"]) > 0 and int(r["runs"]) >= 5
        assert r["ref_ratio"] != ""  # the reference probe ran between measurements
        assert r["env_cpu_model"] and r["device_id"]


@pytest.mark.slow
def test_a_dynamic_dimension_is_named_then_measured_with_its_shape(tmp_path, artifact_cache, models):
    out = tmp_path / "r.csv"
    model = ["--model", str(models["bert"]), *FAST, "--no-reference", "--out", str(out)]
    result = run(model, artifact_cache)
    assert result.returncode == 1
    assert error_lines(result.stderr) == [
        f"error: model {models['bert']}: input 'input_ids' has a dynamic dimension 1 ('sequence'); "
        "give its shape with --input input_ids:1xN"
    ]
    assert "Traceback" not in result.stderr
    typo = run([*model, "--input", "input_id:1x16"], artifact_cache)
    assert typo.returncode == 1 and "no model has an input named 'input_id'" in typo.stderr
    result = run([*model, "--input", "input_ids:1x16"], artifact_cache)
    assert result.returncode == 0, result.stderr
    assert [r["input_shapes"] for r in rows(out)] == ["input_ids:1x16"]
    longer = run([*model, "--input", "input_ids:1x48"], artifact_cache)  # another shape is another measurement
    assert longer.returncode == 0, longer.stderr
    assert [r["input_shapes"] for r in rows(out)] == ["input_ids:1x16", "input_ids:1x48"]


@pytest.mark.slow
def test_each_bad_file_is_one_line_and_the_good_one_is_still_measured(tmp_path, artifact_cache, models):
    out = tmp_path / "r.csv"
    bad = ["text", "truncated", "unsupported", "outside"]
    args = [a for name in [*bad[:2], "mobilenet", *bad[2:]] for a in ("--model", str(models[name]))]
    result = run([*args, *FAST, "--no-reference", "--out", str(out)], artifact_cache)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = error_lines(result.stderr)
    assert len(lines) == len(bad)
    reasons = {
        "text": "not a LiteRT or ONNX model (text: 'a text file, not a model')",
        "truncated": "not a readable ONNX file (cut short",
        "unsupported": "Frobnicate",
        "outside": "outside the model's folder",
    }
    for name, reason in reasons.items():
        [line] = [line for line in lines if models[name].name in line]
        assert reason in line
    [summary] = [line for line in result.stderr.splitlines() if "model(s) refused:" in line]
    assert summary.startswith("4 model(s) refused:") and all(str(models[n]) in summary for n in bad)
    assert result.stdout.strip() == str(out)
    assert [r["arch"] for r in rows(out)] == ["mobilenet.onnx"]


@pytest.mark.slow  # four latbench processes
def test_a_run_that_keeps_no_result_prints_no_path_and_errors_come_first(tmp_path, artifact_cache, models):
    out = tmp_path / "r.csv"
    refused = run(["--model", str(models["bert"]), "--model", str(models["text"]), "--out", str(out)], artifact_cache)
    assert refused.returncode == 1
    assert refused.stdout == "" and not out.exists()
    assert refused.stderr.startswith(f"error: model {models['text']}: not a LiteRT or ONNX model")
    assert f"error: model {models['bert']}: input 'input_ids' has a dynamic dimension" in refused.stderr
    for shape, line in [
        ("input_ids:1x0", "error: bad input shape 'input_ids:1x0': every dimension must be at least 1"),
        ("input_ids:1xabc", "error: bad input shape 'input_ids:1xabc': write NAME:DIMxDIM..., e.g. input:1x3x224x224"),
        ("nosuch:1x3", "error: no model has an input named 'nosuch'; their inputs: bert.onnx: input_ids"),
    ]:
        usage = run(["--model", str(models["bert"]), "--input", shape, "--out", str(out)], artifact_cache)
        assert usage.returncode == 1
        assert usage.stderr.splitlines()[0] == line and usage.stdout == ""


def test_a_directory_gives_its_model_files_as_for_campaigns(tmp_path, artifact_cache, models):
    folder, empty = tmp_path / "models", tmp_path / "empty"
    folder.mkdir()
    empty.mkdir()
    (folder / "notes.onnx").write_text("a text file, not a model\n")
    (folder / "README.txt").write_text("not a model file name: left alone\n")
    result = run(["--model", str(folder), "--model", str(empty), "--out", str(tmp_path / "r.csv")], artifact_cache)
    assert result.returncode == 1
    assert set(error_lines(result.stderr)) == {
        f"error: model {folder / 'notes.onnx'}: not a LiteRT or ONNX model (text: 'a text file, not a model')",
        f"error: {empty} holds no model file (.onnx or .tflite)",
    }


@pytest.mark.slow
def test_onnx_files_under_any_name_and_a_folder_of_them_are_measured(tmp_path, artifact_cache, models):
    folder = tmp_path / "vision"
    folder.mkdir()
    (folder / "mobilenet.onnx").write_bytes(models["mobilenet"].read_bytes())
    resnet, bert = tmp_path / "resnet.bin", tmp_path / "bert.tflite"
    resnet.write_bytes(models["resnet"].read_bytes())
    bert.write_bytes(models["bert"].read_bytes())
    out = tmp_path / "r.csv"
    args = ["--model", str(folder), "--model", str(resnet), "--model", str(bert), "--input", "input_ids:1x8"]
    result = run([*args, *FAST, "--no-reference", "--out", str(out)], artifact_cache)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    assert [(r["arch"], r["runtime"]) for r in rows(out)] == [
        ("mobilenet.onnx", "onnxruntime"),
        ("resnet.bin", "onnxruntime"),
        ("bert.tflite", "onnxruntime"),
    ]


@pytest.mark.slow
def test_a_rerun_skips_measured_models_by_content(tmp_path, artifact_cache, models):
    out = tmp_path / "r.csv"
    first = run(["--model", str(models["mobilenet"]), *FAST, "--no-reference", "--out", str(out)], artifact_cache)
    assert first.returncode == 0, first.stderr
    kept = rows(out)
    copy = tmp_path / "same-bytes.onnx"  # a renamed copy is the same model
    copy.write_bytes(models["mobilenet"].read_bytes())
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    resnet = elsewhere / "mobilenet.onnx"  # another model with the same file name
    resnet.write_bytes(models["resnet"].read_bytes())
    again = run(
        ["--model", str(copy), "--model", str(models["mobilenet"]), "--model", str(resnet), *FAST, "--no-reference",
         "--out", str(out)],
        artifact_cache,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "2 model(s), 1 measured now" in again.stderr
    final = rows(out)
    assert final[0] == kept[0]
    assert final[1]["arch"] == f"mobilenet.onnx@{sha256_file(resnet)[:8]}"
    other = run(["--model", str(models["resnet"]), "--runtime", "tvm", "--out", str(out)], artifact_cache)
    assert other.returncode == 1 and "runtime: file has 'onnxruntime', this run 'tvm'" in other.stderr


@pytest.mark.slow
def test_tvm_compiles_and_times_a_cnn_and_the_transformer(tmp_path, artifact_cache, models):
    out = tmp_path / "r.csv"
    args = ["--model", str(models["mobilenet"]), "--model", str(models["bert"]), "--model", str(models["unsupported"])]
    result = run(
        [*args, "--input", "input_ids:1x16", "--runtime", "tvm", *FAST, "--no-reference", "--out", str(out)],
        artifact_cache,
        tmp_path / "tvm",
    )
    assert result.returncode == 1, result.stderr
    [line] = error_lines(result.stderr)
    assert "frobnicate.onnx" in line and "not supported" in line
    got = rows(out)
    assert [(r["arch"], r["runtime"], r["input_shapes"]) for r in got] == [
        ("mobilenet.onnx", "tvm", "image:1x3x32x32"),
        ("bert.onnx", "tvm", "input_ids:1x16"),
    ]
    assert all(float(r["latency_ms"]) > 0 for r in got)
    assert len(list((tmp_path / "tvm").glob("*.so"))) == 2


@pytest.mark.slow
def test_tflite_times_a_litert_file_and_refuses_onnx_files(tmp_path, artifact_cache, models):
    converter = ensure_converter()
    tflite = mobilenet_tflite(tmp_path / "mobilenet.tflite", converter)
    out = tmp_path / "r.csv"
    result = run(
        ["--model", str(tflite), "--model", str(models["resnet"]), "--runtime", "tflite", *FAST, "--no-reference",
         "--out", str(out)],
        artifact_cache,
    )  # fmt: skip
    assert result.returncode == 1
    refusal = "an ONNX file, which runtime tflite does not take; measure it with onnxruntime or tvm"
    assert error_lines(result.stderr) == [f"error: {models['resnet']}: {refusal}"]
    [row] = rows(out)
    assert (row["arch"], row["runtime"], row["space"], row["opset"]) == ("mobilenet.tflite", "tflite", "model", "")
    assert row["input_shapes"].endswith(":1x3x32x32") and row["artifact_sha256"] == sha256_file(tflite)
    wrong = run(["--model", str(tflite), *FAST, "--no-reference", "--out", str(tmp_path / "x.csv")], artifact_cache)
    assert wrong.returncode == 1
    assert "a LiteRT model, which runtime onnxruntime does not take; measure it with tflite" in wrong.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--model", "m.onnx", "--space", "nb201"],
        ["--model", "m.onnx", "--batch", "2"],
        ["--model", "m.onnx", "--seed", "3"],
        ["--space", "nb201", "--samples", "1", "--input", "x:1x3"],
        ["--samples", "1"],
    ],
)
@pytest.mark.slow
def test_mixing_model_files_and_architectures_is_a_usage_error(tmp_path, artifact_cache, args):
    result = run([*args, "--out", str(tmp_path / "x.csv")], artifact_cache)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr


def test_a_runtime_without_model_files_is_refused_before_anything_runs(tmp_path, artifact_cache, models):
    result = run(["--model", str(models["mobilenet"]), "--runtime", "torch", "--out", str(tmp_path / "x.csv")],
                 artifact_cache)  # fmt: skip
    assert result.returncode == 1
    assert "runtime torch times latbench's own torch.json artifacts, not model files" in result.stderr
    assert not (tmp_path / "x.csv").exists()
