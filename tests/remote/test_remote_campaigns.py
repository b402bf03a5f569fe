"""Campaigns measured on "the remote host" (this machine through a real sshd) with a real collector: by an agent
that ``latbench deploy`` installed there (and upgraded in place), and by an agent here that measures through the
SSH runner. Both campaigns are the same three architectures, so the collector builds their artifacts once."""

from __future__ import annotations

import csv
import json
import site
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from latbench.agents.remote.ssh import SshTarget
from latbench.deploy import build_wheel, stop
from tests.support.modelfiles import mobilenet_onnx, transformer_onnx
from tests.support.ports import free_port
from tests.support.processes import LATBENCH, Agent, Collector, env, totals, wait_for

pytestmark = pytest.mark.slow  # a real sshd, collector and agents; deploys into a venv

FAST = ["--min-runs", "10", "--min-time", "0.05", "--warmup-time", "0.02", "--attempts", "1"]
"""Short timings, measured once however unstable: on a busy machine re-measuring tripled each job's time, and
these tests are about the fleet, not the stability checks (tests/agents/test_measure.py)."""


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory, artifact_cache: Path) -> Iterator[Collector]:
    root = tmp_path_factory.mktemp("remote-collector")
    c = Collector(f"sqlite:///{root / 'c.sqlite'}", root / "data", free_port(), artifacts=artifact_cache).start()
    yield c
    c.stop()


def _campaign(collector: Collector) -> str:
    return collector.cli("campaign", "create", "--space", "nb201", "--samples", "3", "--seed", "5",
                         "--runtime", "onnxruntime", *FAST)  # fmt: skip


def _rows(collector: Collector, campaign: str, out: Path) -> list[dict[str, str]]:
    collector.cli("results", "export", "--campaign", campaign, "--out", str(out))
    with out.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def host_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The host's Python is a venv with packages of its own: a marker module, and (through a .pth) whatever this
    interpreter sees, which is more than the base interpreter's packages when the tests themselves run in a venv."""
    venv = tmp_path_factory.mktemp("host-python") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    probe = "import sysconfig; print(sysconfig.get_path('purelib'))"
    own = Path(subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True).stdout.strip())
    (own / "host_venv_marker.py").write_text("")
    (own / "this-interpreter.pth").write_text("\n".join([*site.getsitepackages(), sysconfig.get_path("purelib")]))
    return python


def _deploy(sshd, collector: Collector, token: str, remote_dir: Path, wheel: Path, python: Path,
            *options: str) -> subprocess.CompletedProcess[str]:  # fmt: skip
    # --no-wait-idle as for every test agent (tests.support.processes.Agent): the collector building artifacts
    # beside it, or any other work on the test machine, would otherwise hold each timing back up to a minute
    done = subprocess.run(
        [*LATBENCH, "deploy", f"{sshd.user}@127.0.0.1", "--port", str(sshd.port), "--key", str(sshd.user_key),
         "--known-hosts", str(sshd.known_hosts), "--collector", collector.url, "--token", token,
         "--python", str(python), "--remote-dir", str(remote_dir), "--system-site-packages", "--offline",
         "--wheel", str(wheel), "--name", "deployed", "--agent-arg=--poll", "--agent-arg=0.5",
         "--agent-arg=--no-wait-idle", "--json", *options],
        capture_output=True, text=True, env=env(), timeout=300,
    )  # fmt: skip
    return done


def _deployed(*args: Any) -> dict:
    done = _deploy(*args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def test_a_deployed_agent_enrolls_completes_a_campaign_and_redeploying_upgrades_it(
    collector, sshd, tmp_path, host_python
):
    wheel = build_wheel(tmp_path / "wheel")
    remote_dir = tmp_path / "host" / "latbench"
    token = collector.cli("token", "create", "--name", "deploy")
    try:
        # a first deploy whose agent cannot enroll (a wrong token) leaves a venv, not an agent: no upgrade after it
        failed = _deploy(sshd, collector, "lb_enroll_wrong", remote_dir, wheel, host_python, "--timeout", "60")
        assert failed.returncode == 1 and failed.stdout == "", failed.stderr
        assert (remote_dir / "venv" / "bin" / "python").exists()
        first = _deployed(sshd, collector, token, remote_dir, wheel, host_python)
        assert first["upgraded"] is False and first["service"] == "nohup"
        imports = "import host_venv_marker, typer, onnxruntime, latbench; print(latbench.__file__)"
        agent_python = remote_dir / "venv" / "bin" / "python"
        seen = subprocess.run([agent_python, "-I", "-c", imports], capture_output=True, text=True)
        assert seen.returncode == 0, seen.stderr
        assert seen.stdout.startswith(str(remote_dir / "venv")), seen.stdout
        assert f"{remote_dir}/venv/bin/latbench agent run" in _cmdline(first["pid"])
        assert (remote_dir / "agent.env").stat().st_mode & 0o777 == 0o600

        campaign = _campaign(collector)
        wait_for(lambda: totals(collector.status(campaign))["done"] == 3, 180, "3 results from the deployed agent")
        assert {r["agent"] for r in _rows(collector, campaign, tmp_path / "out.csv")} == {"deployed"}

        second = _deployed(sshd, collector, token, remote_dir, wheel, host_python)
        assert second["upgraded"] is True
        assert (second["agent_id"], second["device_name"]) == (first["agent_id"], first["device_name"])
        assert second["pid"] != first["pid"] and "latbench" not in _cmdline(first["pid"])
        assert "latbench agent run" in _cmdline(second["pid"])
    finally:
        if (remote_dir / "agent.pid").exists():
            stop(SshTarget.parse(sshd.url), remote_dir=str(remote_dir), key_file=sshd.user_key,
                 known_hosts=sshd.known_hosts)  # fmt: skip
    assert "latbench" not in _cmdline(second["pid"])


def test_an_agent_here_measures_a_campaign_on_the_remote_device(collector, sshd, tmp_path):
    token = collector.cli("token", "create", "--name", "runner")
    campaign = _campaign(collector)
    agent = Agent(collector, token, "via-ssh", tmp_path / "agent", "--poll", "0.5", "--remote", sshd.url,
                  "--key", str(sshd.user_key), "--known-hosts", str(sshd.known_hosts),
                  "--remote-command", sys.executable)  # fmt: skip
    folder = tmp_path / "models"
    folder.mkdir()
    mobilenet_onnx(folder / "mobilenet.onnx")
    transformer_onnx(folder / "transformer.onnx")  # input_ids: 1 x a dynamic sequence
    try:
        wait_for(lambda: totals(collector.status(campaign))["done"] == 3, 180, "3 results through the SSH runner")
        models = collector.cli("campaign", "create", "--models", str(folder), "--runtime", "onnxruntime",
                               "--input", "input_ids:1x24", *FAST)  # fmt: skip
        wait_for(lambda: totals(collector.status(models))["done"] == 2, 180, "2 model files through the SSH runner")
        profiled = collector.cli("campaign", "create", "--space", "nb201", "--samples", "3", "--seed", "5",
                                 "--runtime", "onnxruntime", "--profile", *FAST)  # fmt: skip
        wait_for(lambda: collector.status(profiled)["state"] == "failed", 120, "the refused --profile campaign to end")
    finally:
        assert agent.stop() == 0, agent.log.read_text()[-2000:]
    rows = _rows(collector, campaign, tmp_path / "out.csv")
    assert len(rows) == 3 and {r["agent"] for r in rows} == {"via-ssh"}
    assert all(float(r["latency_ms"]) > 0 and len(json.loads(r["times_ms"])) >= 10 for r in rows)
    shapes = {r["arch"]: r["input_shapes"] for r in _rows(collector, models, tmp_path / "models.csv")}
    assert shapes == {"mobilenet.onnx": "image:1x3x32x32", "transformer.onnx": "input_ids:1x24"}
    # the remote device cannot profile: each job is refused once, as final, and the status says why
    [device] = collector.status(profiled)["devices"]
    refusal = "profiling not supported by runtime onnxruntime on a remote device"
    assert device["failed"] == 3 and device["failures"] == [{"error": refusal, "jobs": 3}]
    error = collector.status(profiled)["error"]
    assert error == f"every job failed (3 jobs on 1 device); the most frequent error: {refusal}"
    assert agent.log.read_text().count(refusal) == 3  # once a job: a final error is not leased again
    shown = collector.cli("campaign", "status", profiled)
    assert f"{device['device']}: 3 jobs failed: {refusal}" in " ".join(shown.split())
    devices = json.loads(collector.cli("devices", "--json"))
    assert [d["runtimes"] for d in devices if "via-ssh" in d["agents"]] == [["onnxruntime"]]
