"""What the machine looked like when it measured: hardware, software, and the state that moves latency.

The static part (CPU model, cores, memory, OS) is read once per session and gives the device fingerprint; the
CPU's identity (family, model, stepping) and the ISA extensions that decide int8 and fp16 speed are recorded beside
it but stay out of the fingerprint, so agents enrolled before them keep their device. The
dynamic part (load, frequency, governor, temperature) is read before and after every measurement so that a
result taken while the machine changed can be flagged.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import platform
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

try:
    import psutil
except ImportError:  # the agent extra brings psutil; without it (a bare board's stub) Linux's own files answer
    psutil = None


@dataclass(frozen=True)
class MachineInfo:
    """The parts of the environment that do not change while a session runs."""

    cpu_model: str
    machine: str
    cores_physical: int | None
    cores_logical: int | None
    memory_gb: float | None
    os: str
    python: str
    hostname: str
    cpu_id: str | None = None
    """``family 25 model 1 stepping 1`` (x86) or ``implementer 0x41 part 0xd0c variant 0x3 revision 1`` (Arm)."""
    cpu_isa: str | None = None
    """The latency-relevant ISA extensions present, sorted and comma-separated (``ISA_FLAGS``)."""

    def fingerprint(self) -> str:
        """A stable id of the hardware configuration (not of one unit): the same on every run of this machine."""
        hardware = {
            "cpu_model": self.cpu_model,
            "machine": self.machine,
            "cores_physical": self.cores_physical,
            "cores_logical": self.cores_logical,
            "memory_gb": round(self.memory_gb or 0),
        }
        return hashlib.sha256(json.dumps(hardware, sort_keys=True).encode()).hexdigest()[:16]

    def psutil_free_fingerprint(self) -> str:
        """The fingerprint this hardware had where psutil was missing, before latbench read the physical cores and
        the memory without it (releases up to 2026-12): a board enrolled then is still the same device."""
        return replace(self, cores_physical=None, memory_gb=None).fingerprint()

    def as_dict(self) -> dict[str, object]:
        """The fields agents enroll with (``protocol.MachineInfoModel``, which refuses others)."""
        return {k: v for k, v in asdict(self).items() if k not in DETAIL_FIELDS}

    def snapshot(self) -> dict[str, object]:
        """Every field, the CPU's identity and ISA included: what a local result row records."""
        return asdict(self)


DETAIL_FIELDS = ("cpu_id", "cpu_isa")
"""``MachineInfo`` fields recorded in local rows but neither enrolled nor fingerprinted."""
ISA_FLAGS = frozenset(
    {"sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512vnni", "avx512_bf16",
     "avx512_fp16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16", "neon", "asimd", "asimdhp", "asimddp", "fphp",
     "sve", "sve2", "i8mm", "bf16", "sme"}
)  # fmt: skip
"""``/proc/cpuinfo`` flags (x86 ``flags``, Arm ``Features``) that move latency: vector width, dot products, fp16."""
ID_FIELDS = (
    ("cpu family", "family"), ("model", "model"), ("stepping", "stepping"), ("CPU implementer", "implementer"),
    ("CPU part", "part"), ("CPU variant", "variant"), ("CPU revision", "revision"),
)  # fmt: skip


@dataclass(frozen=True)
class MachineState:
    """The parts of the environment that drift: read before and after each measurement."""

    load_1m: float | None
    cpu_freq_mhz: float | None
    governor: str | None
    temperature_c: float | None
    memory_available_gb: float | None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _cpu_model(cpuinfo: str) -> str:
    """The CPU's name from ``/proc/cpuinfo`` text, else what ``platform`` says."""
    for line in cpuinfo.splitlines():
        if line.lower().startswith(("model name", "hardware", "processor\t: arm")):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def _cpu_details(cpuinfo: str) -> tuple[str | None, str | None]:
    """The first processor's identity and ISA summary from ``/proc/cpuinfo`` text; ``None`` where it says nothing."""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            if fields:
                break  # the first processor's block has ended
            continue
        fields.setdefault(key.strip(), value.strip())
    ident = " ".join(f"{label} {fields[key]}" for key, label in ID_FIELDS if fields.get(key))
    flags = set((fields.get("flags") or fields.get("Features") or "").split()) & ISA_FLAGS
    return ident or None, ",".join(sorted(flags)) or None


def machine_info() -> MachineInfo:
    cpuinfo = _read("/proc/cpuinfo") or ""
    cpu_id, cpu_isa = _cpu_details(cpuinfo)
    return MachineInfo(
        cpu_model=_cpu_model(cpuinfo),
        machine=platform.machine(),
        cores_physical=psutil.cpu_count(logical=False) if psutil else _physical_cores(cpuinfo),
        cores_logical=psutil.cpu_count(logical=True) if psutil else os.cpu_count(),
        memory_gb=round(total / 2**30, 2) if (total := _memory("MemTotal")) is not None else None,
        os=platform.platform(),
        python=sys.version.split()[0],
        hostname=platform.node(),
        cpu_id=cpu_id,
        cpu_isa=cpu_isa,
    )


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


# Without psutil, the same readings from Linux's own files, read as psutil reads them on Linux: a board's device
# fingerprint must not change the day psutil is installed there, and its throttling must show without it.


def _physical_cores(cpuinfo: str) -> int | None:
    """Distinct cores: sets of sibling threads in sysfs' topology, else ``cpu cores`` per ``physical id``."""
    topology = "/sys/devices/system/cpu/cpu[0-9]*/topology/"
    siblings = {
        _read(path) for path in glob.glob(topology + "core_cpus_list") or glob.glob(topology + "thread_siblings_list")
    }
    if siblings:
        return len(siblings)
    per_package: dict[str, int] = {}
    for block in cpuinfo.lower().split("\n\n"):
        fields = dict(
            line.split("\t:", 1) for line in block.splitlines() if line.startswith(("physical id", "cpu cores"))
        )
        if "physical id" in fields and "cpu cores" in fields:
            per_package[fields["physical id"].strip()] = int(fields["cpu cores"])
    return sum(per_package.values()) or None


def _memory(field: str) -> int | None:
    """A ``/proc/meminfo`` field (``MemTotal``, ``MemAvailable``) in bytes."""
    if psutil is not None:
        memory = psutil.virtual_memory()
        return int(memory.total if field == "MemTotal" else memory.available)
    for line in (_read("/proc/meminfo") or "").splitlines():
        key, _, value = line.partition(":")
        if key == field and value.split():
            return int(value.split()[0]) * 1024
    return None


def _frequency() -> float | None:
    """The CPUs' mean current frequency in MHz: cpufreq's policies, else ``/proc/cpuinfo``'s ``cpu MHz``."""
    if psutil is not None:
        try:
            current = psutil.cpu_freq()
        except (OSError, RuntimeError, NotImplementedError):
            return None
        return round(current.current, 1) if current else None
    paths = glob.glob("/sys/devices/system/cpu/cpufreq/policy[0-9]*/scaling_cur_freq") or glob.glob(
        "/sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_cur_freq"
    )
    khz = [float(text) for path in paths if (text := _read(path)) and text.isdigit()]
    if khz:
        return round(sum(khz) / len(khz) / 1000, 1)
    mhz = [
        float(line.split(":", 1)[1])
        for line in (_read("/proc/cpuinfo") or "").splitlines()
        if line.lower().startswith("cpu mhz")
    ]
    return round(sum(mhz) / len(mhz), 1) if mhz else None


def _temperature() -> float | None:
    """The hottest sensor in degrees Celsius: psutil's, else the kernel's thermal zones."""
    if psutil is None:
        zones = [
            int(text) / 1000
            for path in glob.glob("/sys/class/thermal/thermal_zone*/temp")
            if (text := _read(path)) and text.lstrip("-").isdigit()
        ]
        return max((t for t in zones if t), default=None)
    if not hasattr(psutil, "sensors_temperatures"):
        return None
    try:
        readings = [t.current for group in psutil.sensors_temperatures().values() for t in group if t.current]
    except (OSError, RuntimeError):
        return None
    return max(readings) if readings else None


def machine_state() -> MachineState:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    available = _memory("MemAvailable")
    return MachineState(
        load_1m=round(load, 2) if load is not None else None,
        cpu_freq_mhz=_frequency(),
        governor=_read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        temperature_c=_temperature(),
        memory_available_gb=round(available / 2**30, 2) if available is not None else None,
    )


def changed(before: MachineState, after: MachineState, freq_tolerance: float = 0.1) -> list[str]:
    """Reasons the machine changed between two readings in a way that moves latency."""
    reasons = []
    f0, f1 = before.cpu_freq_mhz, after.cpu_freq_mhz
    if f0 and f1 and abs(f1 - f0) / f0 > freq_tolerance:
        reasons.append("frequency_changed")
    if before.governor != after.governor:
        reasons.append("governor_changed")
    cores = os.cpu_count() or 1
    if before.load_1m is not None and after.load_1m is not None and after.load_1m - before.load_1m > 0.5 * cores:
        reasons.append("load_rose")
    return reasons
