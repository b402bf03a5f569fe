"""Helpers shared by the dataset tests: the real data in ``shared/data``, the CLI, and registry snapshots."""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
LATBENCH = [sys.executable, "-m", "latbench"]


def shared_table(space: str) -> pd.DataFrame:
    """The public long table of ``space`` (``arch, arch_index, device, latency_ms``), read with pandas."""
    with gzip.open(SHARED / f"{space}_latency.csv.gz", "rt") as f:
        return pd.read_csv(f, dtype={"arch": str, "arch_index": "int64", "device": str, "latency_ms": "float64"})


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([*LATBENCH, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` (hidden ones included): a file's SHA-256, or ``dir``."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(root.rglob("*"))
    }
