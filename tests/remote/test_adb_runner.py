"""The adb runner, against a test double of ``adb`` (no phone exists here): the "phone" is a directory on this
machine, ``adb push`` copies into it and ``adb shell`` runs the command in a local shell, so the real ``taskset``
and a stand-in ``benchmark_model`` that prints what the real one prints. The same upload, run, parse and clean-up
code runs for real against a real sshd in ``test_ssh_runner.py``."""

from __future__ import annotations

import platform
import stat
import subprocess
from pathlib import Path

import pytest

from latbench.agents.measure import TimingSettings
from latbench.agents.remote.adb import AdbDevice
from latbench.agents.remote.device import OWNER_FILE
from latbench.agents.remote.parse import SUMMARY_FLAG
from latbench.agents.remote.runner import RemoteRunner
from latbench.agents.remote.tools import BenchmarkModelTool
from latbench.errors import RemoteError
from tests.remote.test_remote_parsers import BENCHMARK_MODEL
from tests.support.processes import LATBENCH, env

FAKE_ADB = """#!/bin/sh
# test double of Android's adb; logs every call
[ "$1" = "-s" ] && { echo "serial $2" >> "{log}"; shift 2; }
echo "$*" >> "{log}"
case "$1" in
  push) cp "$2" "$3" ;;
  shell) shift; exec sh -c "$*" ;;
  *) echo "fake adb: unsupported $1" >&2; exit 1 ;;
esac
"""

FAKE_BENCHMARK_MODEL = """#!/bin/sh
# stands in for TFLite's benchmark_model on the phone: checks the model was pushed, prints the real tool's output
echo "$*" > "{args}"
for a in "$@"; do
  case "$a" in --graph=*) test -f "${a#--graph=}" || { echo "ERROR: no model"; exit 1; };; esac
done
cat "{output}"
"""


def _executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def phone(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "sample.txt").write_text(BENCHMARK_MODEL)
    return {
        "adb": _executable(tmp_path / "adb", FAKE_ADB.replace("{log}", str(tmp_path / "adb.log"))),
        "benchmark_model": _executable(
            tmp_path / "benchmark_model",
            FAKE_BENCHMARK_MODEL.replace("{args}", str(tmp_path / "args.txt")).replace(
                "{output}", str(tmp_path / "sample.txt")
            ),
        ),
        "root": tmp_path,
    }


def test_adb_runner_pushes_pins_runs_parses_and_cleans_up(phone, tmp_path):
    workdir = tmp_path / "data-local-tmp" / "latbench-test"
    workdir.parent.mkdir()
    device = AdbDevice("emulator-5554", adb=str(phone["adb"]), workdir=str(workdir))
    tool = BenchmarkModelTool(command=str(phone["benchmark_model"]), cpu_mask="1")
    model = tmp_path / "abc.tflite"
    model.write_bytes(b"TFL3 model bytes")
    settings = TimingSettings(min_runs=50, min_time_s=1.0, warmup_runs=10, warmup_time_s=0.5, max_attempts=1)
    with RemoteRunner(device, tool) as runner:
        assert runner.artifact_format("tflite") == "tflite"
        with pytest.raises(RemoteError, match="benchmark_model measures tflite jobs, not onnxruntime"):
            runner.artifact_format("onnxruntime")
        assert runner.machine_info().machine == platform.machine()
        m, engine = runner.measure(model, "tflite", threads=4, provider="cpu", settings=settings)
        assert sorted(p.name for p in workdir.iterdir()) == [OWNER_FILE]  # the pushed model is removed after the run
    assert not workdir.exists()

    calls = (tmp_path / "adb.log").read_text()
    assert "serial emulator-5554" in calls
    assert f"push {model} {workdir}/abc.tflite" in calls
    assert f"taskset 1 {phone['benchmark_model']} --graph={workdir}/abc.tflite" in calls
    args = (tmp_path / "args.txt").read_text().split()
    assert {"--num_threads=4", "--num_runs=50", "--min_secs=1.0", "--warmup_runs=10"} <= set(args)
    assert m.stats.runs == 784 and m.stats.median_ms == pytest.approx(1.27299)
    assert m.warmup_runs == 391 and m.times_ns.size == 0
    assert SUMMARY_FLAG in m.flags and m.state_before is not None
    assert engine.version() == "benchmark_model" and engine.settings()["threads"] == 4


def test_a_missing_adb_is_a_clear_error(tmp_path):
    with pytest.raises(RemoteError, match="not found: install Android platform-tools"):
        AdbDevice(adb=str(tmp_path / "no-adb"))


@pytest.mark.slow  # the CLI in a subprocess
def test_the_cli_says_to_put_a_missing_adb_on_path(tmp_path):
    """The CLI has no option for adb's path: the message asks for what the CLI can use."""
    done = subprocess.run(
        [*LATBENCH, "agent", "run", "--collector", "http://127.0.0.1:9", "--state-dir", str(tmp_path / "state"),
         "--runtime", "tflite", "--remote", "adb://R58M123ABC", "--remote-tool", "benchmark_model"],
        capture_output=True, text=True, env={**env(), "LATBENCH_TOKEN": "t", "PATH": str(tmp_path)}, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == "error: 'adb' not found: install Android platform-tools and put adb on PATH"


def test_the_work_dir_is_private_and_new(phone, tmp_path):
    """0700 while in use (models go there), and a directory that exists already is refused, not used or removed."""
    workdir = tmp_path / "latbench-private"
    with AdbDevice(adb=str(phone["adb"]), workdir=str(workdir)):
        assert stat.S_IMODE(workdir.stat().st_mode) == 0o700
    taken = tmp_path / "latbench-taken"
    taken.mkdir()
    (taken / "theirs").write_text("x")
    with pytest.raises(RemoteError, match=r"work dir .*latbench-taken exists already; refusing"):
        AdbDevice(adb=str(phone["adb"]), workdir=str(taken))
    assert (taken / "theirs").read_text() == "x"


def test_a_failing_tool_reports_its_output(phone, tmp_path):
    device = AdbDevice(adb=str(phone["adb"]), workdir=str(tmp_path / "w"))
    with RemoteRunner(device, BenchmarkModelTool(command=str(tmp_path / "missing-benchmark_model"))) as runner:
        model = tmp_path / "m.tflite"
        model.write_bytes(b"x")
        with pytest.raises(RemoteError, match="benchmark_model failed on the device"):
            runner.measure(model, "tflite", settings=TimingSettings(max_attempts=1))


def test_a_binary_tool_refuses_input_shapes_and_names_the_stub(phone, tmp_path):
    device = AdbDevice(adb=str(phone["adb"]), workdir=str(tmp_path / "w"))
    with RemoteRunner(device, BenchmarkModelTool(command=str(phone["benchmark_model"]))) as runner:
        model = tmp_path / "m.tflite"
        model.write_bytes(b"TFL3")
        with pytest.raises(RemoteError, match="static input shapes only; the stub tool"):
            runner.measure(model, "tflite", settings=TimingSettings(max_attempts=1), input_shapes={"x": [1, 8]})
    assert not (tmp_path / "args.txt").exists()  # refused before the tool ran
