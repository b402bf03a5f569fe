"""What ``latbench measure --model`` records and reuses: a row holds the settings it was measured with, a results
file resumes only with them (as ``dataset build`` checks them), a model's batch is its own, and a copy of a file
under another name is measured once and said so. Real ONNX Runtime on tiny ONNX files made here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import latbench
from latbench.agents.environment import MachineInfo, _cpu_details
from latbench.errors import ResultsFileError
from latbench.protocol import MachineInfoModel
from latbench.resultfile import ResultsFile, read_results, write_results
from latbench.resultview import from_file

FAST = latbench.TimingSettings(warmup_runs=1, warmup_time_s=0.0, min_runs=5, min_time_s=0.01, max_time_s=1.0)
LATBENCH = [sys.executable, "-c", "from latbench.cli import main; main()"]


def relu_model(
    path: Path, opset: int = 17, dims: tuple[int | str, ...] = (1, 8), inputs: tuple[str, ...] = ("x",)
) -> Path:
    """An ONNX file adding its ``inputs`` (each of shape ``dims``) and applying ReLU, at default-domain ``opset``."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Relu", [inputs[0]], ["y0"])]
    for i, name in enumerate(inputs[1:], start=1):
        nodes.append(helper.make_node("Add", [f"y{i - 1}", name], [f"y{i}"]))
    graph = helper.make_graph(
        nodes,
        "relu",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, list(dims)) for name in inputs],
        [helper.make_tensor_value_info(f"y{len(inputs) - 1}", TensorProto.FLOAT, list(dims))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_a_resumed_file_is_refused_under_other_timing_settings_and_untouched(tmp_path):
    model, out = relu_model(tmp_path / "m.onnx"), tmp_path / "r.csv"
    [first] = latbench.measure(models=[model], settings=FAST, out=out, reference=False)
    before = out.read_bytes()
    stricter = latbench.TimingSettings(**{**FAST.__dict__, "min_runs": 7})
    with pytest.raises(ResultsFileError, match=r"cfg_min_runs: file has 5, this run 7.*use another --out"):
        latbench.measure(models=[model], settings=stricter, out=out, reference=False)
    with pytest.raises(ResultsFileError, match="cfg_reference: file has False, this run True"):
        latbench.measure(models=[model], settings=FAST, out=out, reference=True)
    assert out.read_bytes() == before
    [again] = latbench.measure(models=[model], settings=FAST, out=out, reference=False)
    assert again["measured_at"] == first["measured_at"]  # the same settings resume: nothing measured anew


def test_rows_record_the_run_settings_and_the_cpu_beside_the_fingerprint(tmp_path):
    [row] = latbench.measure(models=[relu_model(tmp_path / "m.onnx")], settings=FAST, reference=False)
    assert row["cfg_reference"] is False and row["cfg_wait_idle"] is False
    assert row["cfg_pin_core"] == (next(iter(os.sched_getaffinity(0))) if len(os.sched_getaffinity(0)) == 1 else None)
    assert "env_cpu_id" in row and "env_cpu_isa" in row
    # the CPU's identity and ISA stay out of what agents enroll with and out of the device fingerprint
    plain = MachineInfo("EPYC", "x86_64", 2, 4, 8.0, "Linux", "3.11", "vm")
    detailed = MachineInfo("EPYC", "x86_64", 2, 4, 8.0, "Linux", "3.11", "vm", "family 25 model 1", "avx2,fma")
    assert detailed.fingerprint() == plain.fingerprint() and detailed.as_dict() == plain.as_dict()
    MachineInfoModel.model_validate(detailed.as_dict())
    assert detailed.snapshot()["cpu_isa"] == "avx2,fma"


def test_cpu_details_read_the_first_processor_of_x86_and_arm_cpuinfo():
    x86 = "processor\t: 0\ncpu family\t: 25\nmodel\t\t: 1\nmodel name\t: AMD EPYC\nstepping\t: 1\n"
    x86 += "flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_vnni\n\nprocessor\t: 1\ncpu family\t: 99\n"
    assert _cpu_details(x86) == ("family 25 model 1 stepping 1", "avx,avx2,avx512_vnni,avx512f,fma,sse4_2")
    arm = "processor\t: 0\nFeatures\t: fp asimd asimddp i8mm\nCPU implementer\t: 0x41\nCPU part\t: 0xd0c\n"
    assert _cpu_details(arm) == ("implementer 0x41 part 0xd0c", "asimd,asimddp,i8mm")
    assert _cpu_details("") == (None, None)


def test_a_file_from_before_the_new_settings_columns_still_resumes(tmp_path):
    model, out = relu_model(tmp_path / "m.onnx"), tmp_path / "r.csv"
    latbench.measure(models=[model], settings=FAST, out=out, reference=False)
    newer = ("cfg_pin_core", "cfg_reference", "cfg_wait_idle", "env_cpu_id", "env_cpu_isa")
    write_results(out, [{k: v for k, v in r.items() if k not in newer} for r in read_results(out)])
    other = relu_model(tmp_path / "n.onnx", opset=13)
    rows = latbench.measure(models=[model, other], settings=FAST, out=out, reference=False)
    assert len(rows) == 2 and len(latbench.measure(models=[model, other], settings=FAST, out=out, reference=False)) == 2


def test_a_model_batch_is_its_first_input_dimension_and_a_copy_is_measured_once_and_said_so(tmp_path):
    dynamic = relu_model(tmp_path / "prod_v1.onnx", dims=("n", 8))
    copy = tmp_path / "prod_v2.onnx"
    copy.write_bytes(dynamic.read_bytes())
    with pytest.warns(UserWarning, match=r"^prod_v2.onnx: the same file as prod_v1.onnx, measured once as prod_v1"):
        [row] = latbench.measure(models=[dynamic, copy], inputs=["x:4x8"], settings=FAST, reference=False)
    assert row["batch"] == 4 and row["input_shapes"] == "x:4x8"


@pytest.mark.slow  # runs latbench in subprocesses
def test_the_cli_says_copies_words_the_summary_as_medians_and_prints_rows_as_json(tmp_path):
    import json

    one = relu_model(tmp_path / "a.onnx")
    (tmp_path / "b.onnx").write_bytes(one.read_bytes())
    two = relu_model(tmp_path / "c.onnx", opset=13, dims=(2, 8))
    args = ["measure", "--model", str(one), "--model", str(tmp_path / "b.onnx"), "--model", str(two),
            "--min-runs", "5", "--min-time", "0.01", "--warmup-runs", "1", "--no-reference",
            "--out", str(tmp_path / "r.csv")]  # fmt: skip
    env = {**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*LATBENCH, *args, "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "b.onnx: the same file as a.onnx, measured once as a.onnx" in done.stderr
    assert "latencies (each a median of its runs) from " in done.stderr and "(min " not in done.stderr
    rows = json.loads(done.stdout)
    assert [(r["arch"], r["batch"], r["opset"]) for r in rows] == [("a.onnx", 1, 17), ("c.onnx", 2, 13)]
    stricter = subprocess.run([*LATBENCH, *args, "--min-runs", "6"], capture_output=True, text=True, env=env)
    assert stricter.returncode != 0 and "cfg_min_runs: file has 5, this run 6" in stricter.stderr
    assert "Traceback" not in stricter.stderr


def test_results_show_json_joins_back_to_the_file_and_flags_are_text(tmp_path):
    measured = tmp_path / "measured.csv"
    [row] = latbench.measure(models=[relu_model(tmp_path / "m.onnx")], settings=FAST, out=measured, reference=False)
    for path in (tmp_path / "r.csv", tmp_path / "r.parquet"):  # a stable row: no flags, which CSV reads as empty
        write_results(path, [dict(r, flags="") for r in read_results(measured)])
        [view] = from_file(path)
        shown = view.as_json()
        assert shown["flags"] == "" and shown["artifact_sha256"] == row["artifact_sha256"]
        assert shown["input_shapes"] == "x:1x8" and "device" in shown and "result_id" in shown


def test_an_empty_setting_resumes_as_the_same_setting_it_was_written_as(tmp_path):
    """A runtime without an optimisation level writes ``cfg_optimization`` empty, which CSV reads back as no value."""
    path = tmp_path / "r.csv"
    write_results(path, [{"arch": "m.onnx", "cfg_optimization": "", "cfg_reference": True}])
    ResultsFile(path).check_compatible({"cfg_optimization": "", "cfg_reference": True})
    with pytest.raises(ResultsFileError, match="cfg_reference: file has True, this run False"):
        ResultsFile(path).check_compatible({"cfg_optimization": "", "cfg_reference": False})
