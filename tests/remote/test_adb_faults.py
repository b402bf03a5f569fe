"""An unplugged (or rebooting) phone is the device's fault, not the job's: the adb runner raises
``DeviceUnreachable`` as the SSH runner does, and measures again once the phone is back. Against the test double
of ``adb`` of ``test_adb_runner.py``, made to answer as adb does for a device that is gone."""

from __future__ import annotations

from pathlib import Path

import pytest

from latbench.agents.measure import TimingSettings
from latbench.agents.remote.adb import AdbDevice
from latbench.agents.remote.runner import RemoteRunner
from latbench.agents.remote.tools import BenchmarkModelTool
from latbench.errors import DeviceUnreachable
from tests.remote.test_adb_runner import FAKE_ADB, FAKE_BENCHMARK_MODEL, _executable
from tests.remote.test_remote_parsers import BENCHMARK_MODEL

UNPLUGGABLE = """#!/bin/sh
# adb, as it answers while the phone is unplugged (the file {unplugged} exists)
if [ -e "{unplugged}" ]; then
  echo "adb: error: failed to get feature set: device 'emulator-5554' not found" >&2
  exit 1
fi
exec "{adb}" "$@"
"""


def test_an_unplugged_phone_is_unreachable_and_measured_again_once_back(tmp_path: Path):
    (tmp_path / "sample.txt").write_text(BENCHMARK_MODEL)
    adb = _executable(tmp_path / "real-adb", FAKE_ADB.replace("{log}", str(tmp_path / "adb.log")))
    unplugged = tmp_path / "unplugged"
    flaky = _executable(tmp_path / "adb", UNPLUGGABLE.replace("{unplugged}", str(unplugged)).replace("{adb}", str(adb)))
    tool = _executable(
        tmp_path / "benchmark_model",
        FAKE_BENCHMARK_MODEL.replace("{args}", str(tmp_path / "args.txt")).replace(
            "{output}", str(tmp_path / "sample.txt")
        ),
    )
    model = tmp_path / "m.tflite"
    model.write_bytes(b"TFL3")
    settings = TimingSettings(max_attempts=1)
    device = AdbDevice("emulator-5554", adb=str(flaky), workdir=str(tmp_path / "latbench-phone"))
    with RemoteRunner(device, BenchmarkModelTool(command=str(tool)), reconnect_delays_s=(0.05, 0.1)) as runner:
        runner.measure(model, "tflite", settings=settings)
        unplugged.touch()
        with pytest.raises(DeviceUnreachable, match="device 'emulator-5554' not found"):  # was: the job's failure
            runner.measure(model, "tflite", settings=settings)
        unplugged.unlink()
        m, _ = runner.measure(model, "tflite", settings=settings)
        assert m.stats.runs == 784
        assert runner.device.workdir != str(tmp_path / "latbench-phone")  # set up again, in a new work dir
