"""``latbench measure --remote``: architectures and model files built (or checked) here and timed on a device
through a real sshd, without a collector. The device is this machine, run by a "board" Python whose start-up
makes it report another hostname, numpy and core count, so every row can be told to describe the device and
not the machine that ran the command."""

from __future__ import annotations

import csv
import dataclasses
import json
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

import latbench
from latbench.agents.environment import machine_info
from latbench.agents.quiet import QuietPolicy
from latbench.agents.remote import open_runner
from latbench.errors import LatbenchError, RuntimeUnavailable
from latbench.spaces import get_space
from tests.remote.test_remote_device_needs import device_python
from tests.remote.test_ssh_runner import _other_key_file, _stub_pids
from tests.support.models import FAST_CLI
from tests.support.processes import LATBENCH, env
from tests.test_local_model_rows import relu_model

pytestmark = pytest.mark.slow  # a real sshd, latbench in subprocesses

FAST = latbench.TimingSettings(warmup_runs=1, warmup_time_s=0.0, min_runs=5, min_time_s=0.01, max_attempts=1)

BOARD = """
import os, platform
import numpy, psutil
numpy.__version__ = "1.99.0+board"
platform.node = lambda: "board-7"
psutil.cpu_count = lambda logical=True: {cores}
with open({seen!r}, "a") as f:  # the stub's PYTHONPATH: the agent zip in the runner's work dir
    f.write(os.environ["PYTHONPATH"].split(":")[0] + "\\n")
"""


def board(tmp_path: Path, cores: int = 64, name: str = "board") -> tuple[Path, Path]:
    """A board's Python (``cores`` cores, hostname board-7, numpy 1.99.0+board) and the file where each stub it
    runs writes its work dir."""
    folder, seen = tmp_path / name, tmp_path / f"{name}-workdirs"
    folder.mkdir()
    return device_python(folder, BOARD.format(cores=cores, seen=str(seen))), seen


def board_fingerprint(cores: int) -> str:
    return dataclasses.replace(machine_info(), cores_physical=cores, cores_logical=cores).fingerprint()


def workdirs(seen: Path) -> set[Path]:
    return {Path(line).parent for line in seen.read_text().split()} if seen.exists() else set()


def remote(sshd, python: Path, known_hosts: Path | None = None) -> list[str]:
    return ["--remote", sshd.url, "--key", str(sshd.user_key), "--known-hosts", str(known_hosts or sshd.known_hosts),
            "--remote-command", str(python)]  # fmt: skip


def run(args: list[str], cache: Path) -> subprocess.CompletedProcess[str]:
    environ = env(LATBENCH_CACHE_DIR=str(cache))
    return subprocess.run([*LATBENCH, "measure", *args], capture_output=True, text=True, env=environ, timeout=300)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_architectures_timed_on_a_board_are_its_rows_resume_there_and_not_on_another(sshd, tmp_path, artifact_cache):
    python, seen = board(tmp_path)
    out = tmp_path / "r.csv"
    args = ["-s", "nb201", "-n", "2", "--seed", "5", *FAST_CLI, "--attempts", "1", "-o", str(out)]
    done = run([*args, *remote(sshd, python)], artifact_cache)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out)
    assert f"2 architecture(s) on {sshd.url}, 2 measured now" in " ".join(done.stderr.split())
    first = rows(out)
    assert [r["arch"] for r in first] == get_space("nb201").sample(2, seed=5)
    for row in first:
        assert row["device_id"] == board_fingerprint(64) != machine_info().fingerprint()
        assert (row["env_hostname"], row["env_numpy"], row["env_cores_logical"]) == ("board-7", "1.99.0+board", "64")
        assert (row["cfg_reference"], row["cfg_wait_idle"], row["cfg_pin_core"]) == ("False", "False", "")
        assert (row["load_ms"], row["first_run_ms"], row["peak_rss_mb"], row["ref_ratio"]) == ("", "", "", "")
        assert row["runtime_version"] and row["cfg_optimization"] == "all" and float(row["latency_ms"]) > 0
    assert len(workdirs(seen)) == 1 and not any(d.exists() for d in workdirs(seen))  # gone with the command

    again = run([*args, *remote(sshd, python)], artifact_cache)  # the same board: resumed, nothing timed anew
    assert again.returncode == 0, again.stderr
    assert "2 architecture(s)" in again.stderr and "0 measured now" in again.stderr
    assert rows(out) == first

    other, _ = board(tmp_path, cores=32, name="other")
    refused = run([*args, *remote(sshd, other)], artifact_cache)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert f"device_id: file has '{board_fingerprint(64)}', this run '{board_fingerprint(32)}'" in refused.stderr
    assert rows(out) == first


def test_a_model_file_is_timed_there_with_the_input_shapes_given(sshd, tmp_path, artifact_cache):
    python, _ = board(tmp_path)
    dynamic = relu_model(tmp_path / "dyn.onnx", dims=("n", 8))
    fixed = relu_model(tmp_path / "fixed.onnx", dims=(2, 8), inputs=("y",))
    out = tmp_path / "m.csv"
    args = ["-m", str(dynamic), "-m", str(fixed), "--input", "x:4x8", *FAST_CLI, "-o", str(out), "--json"]
    done = run([*args, *remote(sshd, python)], artifact_cache)
    assert done.returncode == 0, done.stderr
    got = {r["arch"]: r for r in rows(out)}
    assert (got["dyn.onnx"]["input_shapes"], got["dyn.onnx"]["batch"]) == ("x:4x8", "4")
    assert (got["fixed.onnx"]["input_shapes"], got["fixed.onnx"]["batch"]) == ("y:2x8", "2")
    assert {r["env_numpy"] for r in got.values()} == {"1.99.0+board"}
    assert {r["cfg_reference"] for r in got.values()} == {"False"}
    printed = json.loads(done.stdout)
    assert [(r["arch"], r["input_shapes"]) for r in printed] == [("dyn.onnx", "x:4x8"), ("fixed.onnx", "y:2x8")]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--wait-idle"], "--wait-idle waits until this machine is idle, not the remote device"),
        (["--pin-core", "0"], "--pin-core pins this machine's process, not the remote device's: use --cpu-mask"),
        (["--profile"], "profiling (--profile) is not available on a remote device"),
        (["--input-data", "x.npz"], "--input-data is not taken on a remote device yet"),
    ],
)
def test_what_a_device_cannot_do_is_refused_in_one_line_before_connecting(tmp_path, extra, message):
    """The device named does not even exist: each refusal comes first, and nothing is built or written."""
    model, cache = relu_model(tmp_path / "m.onnx"), tmp_path / "cache"
    np.savez(tmp_path / "x.npz", x=np.ones((1, 8), dtype=np.float32))
    args = ["-m", str(model), "-o", str(tmp_path / "r.csv"), "--remote", "ssh://nobody@127.0.0.1:9", "--device-wait",
            "0", *[str(tmp_path / a) if a.endswith(".npz") else a for a in extra]]  # fmt: skip
    done = run(args, cache)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == [done.stderr.strip()] and message in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "r.csv").exists() and not cache.exists()


def test_remote_options_without_remote_are_a_usage_error(tmp_path):
    done = run(["-m", str(relu_model(tmp_path / "m.onnx")), "--cpu-mask", "f0", "-o", str(tmp_path / "r.csv")],
               tmp_path / "cache")  # fmt: skip
    assert done.returncode == 2 and "are for --remote" in done.stderr and not (tmp_path / "r.csv").exists()


def test_a_wrong_host_key_is_refused_in_one_line_before_anything_is_built(sshd, tmp_path):
    python, seen = board(tmp_path)
    cache, out = tmp_path / "fresh-cache", tmp_path / "r.csv"
    known = _other_key_file(tmp_path, sshd)
    done = run(["-s", "nb201", "-n", "1", "-o", str(out), *remote(sshd, python, known)], cache)
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert "does not match" in done.stderr and "refusing to connect" in done.stderr
    assert not cache.exists() and not out.exists() and not seen.exists()


def test_ctrl_c_closes_the_runner_and_leaves_nothing_on_the_device(sshd, tmp_path, artifact_cache):
    python, seen = board(tmp_path)
    out = tmp_path / "r.csv"
    args = ["measure", "-s", "nb201", "-n", "5", "--seed", "9", "--min-time", "0.4", *FAST_CLI[:2], "-o", str(out),
            *remote(sshd, python)]  # fmt: skip
    environ = env(LATBENCH_CACHE_DIR=str(artifact_cache))
    proc = subprocess.Popen([*LATBENCH, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and (not out.exists() or not rows(out)):
        time.sleep(0.05)
    [workdir] = workdirs(seen)
    assert workdir.exists() and _stub_pids(str(workdir))  # measuring the next one there
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "run the same command to resume" in stderr and "Traceback" not in stderr
    assert not workdir.exists() and _stub_pids(str(workdir)) == []
    assert 1 <= len(rows(out)) < 5


def test_the_python_api_times_on_the_runner_and_refuses_what_the_device_cannot_do(sshd, tmp_path):
    """A model the device's engine cannot load is refused on its own; the others are timed there."""
    broken = (
        "from latbench.agents.runtimes.onnxruntime import OnnxRuntime\nload = OnnxRuntime.load\n"
        "def refuse(self, path, *a, **k):\n    if path.name == 'broken.onnx':\n"
        "        raise RuntimeError('the board cannot load this')\n    return load(self, path, *a, **k)\n"
        "OnnxRuntime.load = refuse\n"
    )
    python, seen = board(tmp_path)
    (python.parent / "site" / "sitecustomize.py").write_text(
        (python.parent / "site" / "sitecustomize.py").read_text() + broken
    )
    good, bad = relu_model(tmp_path / "good.onnx"), relu_model(tmp_path / "broken.onnx", opset=13)
    refused: list[str] = []
    out = tmp_path / "api.csv"
    with open_runner(sshd.url, command=str(python), key_file=sshd.user_key, known_hosts=sshd.known_hosts) as runner:
        with pytest.raises(LatbenchError, match="--wait-idle waits until this machine is idle"):
            latbench.measure(models=[good], settings=FAST, remote=runner, quiet=QuietPolicy(), out=out)
        with pytest.raises(RuntimeUnavailable, match="precision int8 is not measured on a remote device"):
            latbench.measure("nb201", samples=1, precision="int8", settings=FAST, remote=runner, out=out)
        assert not out.exists()
        [row] = latbench.measure(
            models=[good, bad], settings=FAST, remote=runner, out=out, on_refused=lambda p, line: refused.append(line)
        )
        assert runner.device.workdir and Path(runner.device.workdir).exists()  # the caller's runner: still open
    assert row["arch"] == "good.onnx" and row["env_hostname"] == "board-7" and row["cfg_reference"] is False
    assert row["device_id"] == board_fingerprint(64) and row["env_numpy"] == "1.99.0+board"
    assert len(refused) == 1 and "broken.onnx" in refused[0] and "the board cannot load this" in refused[0]
    assert [r["arch"] for r in rows(out)] == ["good.onnx"]
    assert not any(d.exists() for d in workdirs(seen))
