"""What the machine looked like when it measured: hardware, software, and the state that moves latency.

The static part (CPU model, cores, memory, OS) is read once per session and gives the device fingerprint; the
CPU's identity (family, model, stepping) and the ISA extensions that decide int8 and fp16 speed are recorded beside
it but stay out of the fingerprint, so agents enrolled before them keep their device. The
dynamic part (load, frequency, governor, temperature) is read before and after every measurement so that a
result taken while the machine changed can be flagged.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

try:
    import psutil
except ImportError:  # the agent extra brings psutil; without it the snapshot is coarser, not wrong
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
        cores_physical=psutil.cpu_count(logical=False) if psutil else None,
        cores_logical=psutil.cpu_count(logical=True) if psutil else os.cpu_count(),
        memory_gb=round(psutil.virtual_memory().total / 2**30, 2) if psutil else None,
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


def _temperature() -> float | None:
    if psutil is None or not hasattr(psutil, "sensors_temperatures"):
        return None
    try:
        readings = [t.current for group in psutil.sensors_temperatures().values() for t in group if t.current]
    except (OSError, RuntimeError):
        return None
    return max(readings) if readings else None


def machine_state() -> MachineState:
    freq = None
    if psutil is not None:
        try:
            current = psutil.cpu_freq()
            freq = round(current.current, 1) if current else None
        except (OSError, RuntimeError, NotImplementedError):
            freq = None
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return MachineState(
        load_1m=round(load, 2) if load is not None else None,
        cpu_freq_mhz=freq,
        governor=_read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        temperature_c=_temperature(),
        memory_available_gb=round(psutil.virtual_memory().available / 2**30, 2) if psutil else None,
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
