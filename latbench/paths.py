"""Where latbench keeps its state on this machine: one home, shared by the agent, the collector and datasets."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "LATBENCH_HOME"


def latbench_home() -> Path:
    """``$LATBENCH_HOME``, defaulting to ``~/.local/share/latbench``."""
    home = os.environ.get(HOME_ENV)
    return Path(home).expanduser() if home else Path.home() / ".local" / "share" / "latbench"
