"""The device's hardware and state, read with a POSIX shell (Linux or Android toybox), for tools without Python.

The same fields as ``latbench.agents.environment`` reads locally, so a remote result carries the same
environment snapshot and its device gets a fingerprint like any agent's.
"""

from __future__ import annotations

from latbench.agents.environment import MachineInfo, MachineState
from latbench.agents.remote.device import RemoteDevice

_INFO = r"""echo "machine=$(uname -m)"; echo "os=$(uname -sr)"; echo "hostname=$(uname -n)"
echo "cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || grep -c ^processor /proc/cpuinfo)"
echo "memory_kb=$(grep -m1 MemTotal /proc/meminfo | tr -s ' ' | cut -d' ' -f2)"
echo "cpu=$(grep -m1 -i -E '^(model name|hardware|cpu model)' /proc/cpuinfo | cut -d: -f2-)"
"""
_STATE = r"""echo "load=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null)"
echo "freq_khz=$(cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq 2>/dev/null)"
echo "governor=$(cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor 2>/dev/null)"
echo "temp_mc=$(cat /sys/class/thermal/thermal_zone*/temp 2>/dev/null | sort -n | tail -1)"
echo "available_kb=$(grep -m1 MemAvailable /proc/meminfo | tr -s ' ' | cut -d' ' -f2)"
"""


def _fields(output: str) -> dict[str, str]:
    pairs = (line.partition("=") for line in output.splitlines())
    return {key: value.strip() for key, sep, value in pairs if sep and value.strip()}


def _number(text: str | None, scale: float = 1.0) -> float | None:
    try:
        return float(text) * scale if text else None
    except ValueError:
        return None


def remote_machine_info(device: RemoteDevice, python: str = "") -> MachineInfo:
    f = _fields(device.exec(_INFO, timeout_s=60).check("reading the device's hardware"))
    cores = _number(f.get("cores"))
    memory = _number(f.get("memory_kb"), 1 / 2**20)
    return MachineInfo(
        cpu_model=f.get("cpu") or f.get("machine") or "unknown",
        machine=f.get("machine", "unknown"),
        cores_physical=None,
        cores_logical=int(cores) if cores else None,
        memory_gb=round(memory, 2) if memory else None,
        os=f.get("os", "unknown"),
        python=python,
        hostname=f.get("hostname", device.target),
    )


def remote_machine_state(device: RemoteDevice) -> MachineState:
    f = _fields(device.exec(_STATE, timeout_s=60).output)
    freq = _number(f.get("freq_khz"), 1e-3)
    temperature = _number(f.get("temp_mc"), 1e-3)
    available = _number(f.get("available_kb"), 1 / 2**20)
    return MachineState(
        load_1m=_number(f.get("load")),
        cpu_freq_mhz=round(freq, 1) if freq else None,
        governor=f.get("governor"),
        temperature_c=round(temperature, 1) if temperature else None,
        memory_available_gb=round(available, 2) if available else None,
    )
