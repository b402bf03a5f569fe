"""A board without psutil (the remote stub's usual case) reads its machine from Linux's own files, as psutil
would: its device fingerprint does not change the day psutil is installed there, and its frequency and memory
readings are recorded. A board enrolled before, under the fingerprint a psutil-free reading gave then, stays its
device."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest

from latbench.agents.daemon import AgentDaemon, run_agent
from latbench.agents.environment import machine_info, machine_state
from latbench.agents.identity import Credentials
from latbench.agents.reports import runtime_offer
from tests.support.served import Harness

WITHOUT_PSUTIL = """
import json, sys
sys.modules["psutil"] = None  # import psutil now fails, as on a board without it
from latbench.agents.environment import machine_info, machine_state
info, state = machine_info(), machine_state()
print(json.dumps({"fingerprint": info.fingerprint(), "info": info.snapshot(), "state": state.as_dict()}))
"""


def test_without_psutil_the_machine_reads_as_with_it():
    done = subprocess.run([sys.executable, "-c", WITHOUT_PSUTIL], capture_output=True, text=True, check=True)
    bare = json.loads(done.stdout)
    info, state = machine_info(), machine_state()
    assert bare["fingerprint"] == info.fingerprint()
    assert bare["info"]["cores_physical"] == info.cores_physical  # None on a VM that tells neither reader its cores
    assert bare["info"]["memory_gb"] == info.memory_gb
    # moving readings: present in both or in neither, and of a size alike
    available = bare["state"]["memory_available_gb"]
    assert available is not None and state.memory_available_gb is not None
    assert 0 < available <= info.memory_gb  # type: ignore[operator]
    assert (bare["state"]["cpu_freq_mhz"] is None) == (state.cpu_freq_mhz is None)
    if state.cpu_freq_mhz is not None:
        # MHz in both (not kHz), read a moment apart: a scaling CPU may move between idle and turbo clocks meanwhile
        assert 0.2 < bare["state"]["cpu_freq_mhz"] / state.cpu_freq_mhz < 5


@pytest.mark.slow  # a real collector
def test_a_board_enrolled_under_its_old_psutil_free_fingerprint_stays_its_device(served: Harness, tmp_path):
    """Enrolled by a release that read no cores or memory without psutil; started now, with a runtime added (so it
    enrolls again under its own token), it is the same agent of the same device, not refused as other hardware."""
    info = machine_info()
    old = info.psutil_free_fingerprint()
    assert old != info.fingerprint()
    machine = replace(info, cores_physical=None, memory_gb=None).as_dict()
    enrolled = served.enroll("board-1", fingerprint=old, machine=machine)
    assert enrolled.status_code == 201, enrolled.text
    answer = enrolled.json()
    state_dir = tmp_path / "agent"
    state_dir.mkdir()
    saved = Credentials(
        collector_url=served.url, agent_id=answer["agent_id"], agent_token=answer["agent_token"],
        device_id=answer["device_id"], device_name=answer["device_name"], heartbeat_interval_s=10.0,
        lease_ttl_s=30.0, name="board-1", fingerprint=old, offered="an older start's runtimes",
    )  # fmt: skip
    saved.save(state_dir / "agent.json")
    agent = AgentDaemon(served.url, [runtime_offer("onnxruntime")], state_dir=state_dir, max_idle_s=0.5, poll_s=0.1)
    run_agent(agent)
    kept = Credentials.load(state_dir / "agent.json")
    assert kept is not None and kept.agent_id == answer["agent_id"] and kept.fingerprint == old
    assert kept.offered != saved.offered  # it did enroll again, telling the collector its runtimes
    devices = served.admin.get("/admin/devices").json()
    assert [(d["name"], d["device_id"], d["fingerprint"]) for d in devices] == [("board-1", answer["device_id"], old)]
    assert devices[0]["conflicts"] == []  # its fuller report is the same hardware, not a suspect claim
