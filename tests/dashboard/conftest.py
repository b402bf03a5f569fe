"""The dashboard's tests reuse the collector tests' harness: a real collector on loopback, with a test clock."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "collectors"))
