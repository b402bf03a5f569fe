"""What the stub needs on the device, and what it records of it, through a real sshd: a Python without numpy is
said in one line with what to do; the numpy a result records is the device's; loading a model does not eat into
the time the timing is given."""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from latbench.agents.measure import TimingSettings
from latbench.agents.remote import open_runner, tools
from latbench.errors import RemoteError

pytestmark = pytest.mark.slow  # a real sshd

FAST = TimingSettings(warmup_runs=2, warmup_time_s=0.02, min_runs=10, min_time_s=0.05, max_attempts=1)


def device_python(tmp_path: Path, sitecustomize: str) -> Path:
    """A Python for the device whose start-up runs ``sitecustomize``: the board's own Python, as far as the stub
    can tell."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(sitecustomize)
    wrapper = tmp_path / "board-python"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="$PYTHONPATH:{site}" exec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def _open(sshd, python: Path):
    return open_runner(sshd.url, command=str(python), key_file=sshd.user_key, known_hosts=sshd.known_hosts)


NO_NUMPY = """
import sys
class NoNumpy:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "numpy":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoNumpy())
"""


def test_a_python_without_numpy_is_said_in_one_line_with_what_to_do(sshd, tmp_path):
    bare = device_python(tmp_path, NO_NUMPY)
    with _open(sshd, bare) as runner, pytest.raises(RemoteError) as refused:
        runner.offers(["onnxruntime"])
    message = str(refused.value)
    assert f"{bare} on the device has no numpy" in message
    assert f"{bare} -m pip install numpy" in message and "--remote-command" in message
    assert "Traceback" not in message and "File " not in message


def test_a_result_records_the_devices_numpy_not_this_ones(sshd, tmp_path, conv_model):
    board = device_python(tmp_path, "import numpy\nnumpy.__version__ = '1.99.0+board'\n")
    with _open(sshd, board) as runner:
        _, engine = runner.measure(conv_model, "onnxruntime", threads=1, provider="cpu", settings=FAST)
    assert engine.numpy_version == "1.99.0+board"


SLOW_LOAD = """
import time
from latbench.agents import measure
from latbench.agents.runtimes.onnxruntime import OnnxRuntime
load, time_model = OnnxRuntime.load, measure.time_model
def slow_load(self, *args, **kwargs):
    time.sleep(6)  # a large model from a board's SD card
    return load(self, *args, **kwargs)
def hung(runtime, settings):
    if settings.min_runs == 11:  # the request to hang
        time.sleep(60)
    return time_model(runtime, settings)
OnnxRuntime.load, measure.time_model = slow_load, hung
"""


def test_loading_a_model_is_given_its_own_time_and_the_timing_its_settings(sshd, tmp_path, conv_model, monkeypatch):
    """The timing's bound is its settings' (plus a slack): a load longer than that is no failure, and a hang
    after the load is found within that bound, not the load's."""
    slow = device_python(tmp_path, SLOW_LOAD)
    settings = replace(FAST, max_time_s=0.5)
    monkeypatch.setattr(tools, "ANSWER_SLACK_S", 4.0)  # the timing's whole bound: about 4.5 s, under the load's 6 s
    with _open(sshd, slow) as runner:
        remote, _ = runner.measure(conv_model, "onnxruntime", threads=1, provider="cpu", settings=settings)
        assert remote.stats.runs >= FAST.min_runs
        started = time.monotonic()
        with pytest.raises(RemoteError, match=r"did not answer within 5 s"):
            runner.measure(
                conv_model, "onnxruntime", threads=1, provider="cpu", settings=replace(settings, min_runs=11)
            )
        assert time.monotonic() - started < 40  # the load (6 s), then the timing's bound: not the load's 600 s
        monkeypatch.setattr(tools, "LOAD_TIMEOUT_S", 1.0)
        with pytest.raises(RemoteError, match=r"did not answer within 1 s"):
            runner.measure(conv_model, "onnxruntime", threads=1, provider="cpu", settings=settings)


def test_the_device_is_described_with_its_cpus_identity_and_isa(sshd):
    """What a row of ``measure --remote`` records of the device's CPU, as a local row does (enrollment leaves it
    out)."""
    from latbench.agents.environment import machine_info

    with open_runner(sshd.url, command=sys.executable, key_file=sshd.user_key, known_hosts=sshd.known_hosts) as runner:
        info = runner.machine_info()
    here = machine_info()
    assert (info.cpu_id, info.cpu_isa) == (here.cpu_id, here.cpu_isa) and (here.cpu_id or here.cpu_isa)
