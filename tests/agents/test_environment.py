"""The environment snapshot and the device fingerprint."""

from __future__ import annotations

import os
import platform
import re
from dataclasses import replace

from latbench.agents.environment import machine_info, machine_state


def test_snapshot_describes_this_machine():
    info = machine_info()
    assert info.machine == platform.machine()
    assert info.cores_logical == os.cpu_count()
    # psutil cannot tell physical cores on every VM (no topology in /sys, no core ids in /proc/cpuinfo): None
    assert info.cores_physical is None or 1 <= info.cores_physical <= info.cores_logical
    assert info.memory_gb and info.memory_gb > 0.1
    assert info.cpu_model and info.python == platform.python_version()
    state = machine_state()
    assert state.load_1m is not None and state.load_1m >= 0
    assert state.memory_available_gb is not None and 0 < state.memory_available_gb <= info.memory_gb


def test_fingerprint_is_stable_and_depends_on_hardware_only():
    a, b = machine_info(), machine_info()
    assert a.fingerprint() == b.fingerprint()
    assert re.fullmatch(r"[0-9a-f]{16}", a.fingerprint())
    assert replace(a, hostname="elsewhere", os="other").fingerprint() == a.fingerprint()
    assert replace(a, cpu_model="Other CPU").fingerprint() != a.fingerprint()
    assert replace(a, cores_logical=(a.cores_logical or 0) + 2).fingerprint() != a.fingerprint()
