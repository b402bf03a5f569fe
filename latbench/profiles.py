"""Per-operator profiles (``--profile``): what each node of a model cost, where each result keeps it, and the
summary by operator type that ``latbench results show`` and the dashboard print.

A profile is taken after the timed runs, on its own runs, because every engine's profiler slows the runs it
records; the latency columns never include it. It is stored beside its results file, gzip-compressed JSON, one
file per result in the ``<stem>.profiles`` folder; the row's ``profile`` column names the file. A collector's
export stream carries the profile inline instead (a JSON object in that column), and ``write_results`` puts it
beside the file it writes. Standard library only.
"""

from __future__ import annotations

import gzip
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from latbench.errors import LatbenchError

SUFFIX = ".json.gz"
DEFAULT_RUNS = 10
"""Profiled runs of ``--profile``: enough to average out one slow run, few enough to stay cheap beside timing."""
_TRAILING_INDEX = re.compile(r"(_?\d+)+$")


class ProfileError(LatbenchError):
    """A profile that cannot be read, or a result without one."""


@dataclass(frozen=True)
class OpTime:
    """One node (ORT), kernel (TVM) or operator (torch) and its mean time per profiled run."""

    node: str
    op: str
    ms: float
    calls: int = 1
    """How many times it ran per profiled run."""


@dataclass(frozen=True)
class OpProfile:
    """The nodes of one model as an engine's profiler timed them over ``runs`` runs after warm-up."""

    runtime: str
    provider: str
    runs: int
    ops: list[OpTime] = field(default_factory=list)

    @property
    def total_ms(self) -> float:
        return sum(o.ms for o in self.ops)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> OpProfile:
        try:
            ops = [OpTime(**o) for o in data["ops"]]  # type: ignore[attr-defined]
            return cls(str(data["runtime"]), str(data["provider"]), int(data["runs"]), ops)  # type: ignore[call-overload]
        except (KeyError, TypeError, ValueError) as exc:
            raise ProfileError(f"not a latbench profile: {exc}") from exc


@dataclass(frozen=True)
class OpTypeTime:
    """One operator type's share of a profile."""

    op: str
    ms: float
    share: float
    nodes: int


def op_type(name: str) -> str:
    """An operator type from a kernel name that has none of its own (TVM: ``fused_conv2d_add1`` ->
    ``fused_conv2d_add``)."""
    return _TRAILING_INDEX.sub("", name) or name


def by_op_type(profile: OpProfile, top: int | None = None) -> list[OpTypeTime]:
    """Time per operator type, largest first (``top`` of them), each with its share of the profiled total."""
    totals: dict[str, list[float]] = {}
    for o in profile.ops:
        entry = totals.setdefault(o.op, [0.0, 0])
        entry[0] += o.ms
        entry[1] += 1
    whole = profile.total_ms or 1.0
    summary = [OpTypeTime(op, round(ms, 6), round(ms / whole, 4), int(n)) for op, (ms, n) in totals.items()]
    summary.sort(key=lambda t: (-t.ms, t.op))
    return summary[:top] if top is not None else summary


def encode(profile: OpProfile) -> bytes:
    """Gzip-compressed JSON: how a profile is stored, in a file or a collector's store."""
    return gzip.compress(json.dumps(profile.as_dict(), separators=(",", ":")).encode(), mtime=0)


def decode(data: bytes) -> OpProfile:
    try:
        return OpProfile.from_dict(json.loads(gzip.decompress(data)))
    except (OSError, EOFError, ValueError) as exc:
        raise ProfileError(f"damaged profile: {exc}") from exc


def profiles_dir(results: str | Path) -> Path:
    """The folder beside a results file that holds its rows' profiles."""
    path = Path(results)
    return path.with_name(f"{path.stem}.profiles")


def save(results: str | Path, profile: OpProfile | Mapping[str, object]) -> str:
    """Write ``profile`` beside the results file; its file name, for the row's ``profile`` column."""
    if not isinstance(profile, OpProfile):
        profile = OpProfile.from_dict(profile)
    folder = profiles_dir(results)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{uuid.uuid4().hex}{SUFFIX}"
    (folder / name).write_bytes(encode(profile))
    return name


def load(results: str | Path, row: Mapping[str, object]) -> OpProfile | None:
    """The profile of ``row`` of the results file ``results``; None if it was measured without ``--profile``."""
    name = row.get("profile")
    if not name:
        return None
    if isinstance(name, Mapping):
        return OpProfile.from_dict(name)
    path = profiles_dir(results) / Path(str(name)).name
    try:
        return decode(path.read_bytes())
    except OSError as exc:
        raise ProfileError(f"the profile of {row.get('arch')!r} is missing: cannot read {path}") from exc
