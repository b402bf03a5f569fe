"""Log lines of the long-running commands (``agent run``, ``collector serve``): one format for both, so a
journal reads alike whichever side wrote it."""

from __future__ import annotations

import logging
import sys


def log_to_stderr(verbose: bool) -> None:
    """Plain timestamped lines for a terminal or journald; only latbench's own loggers (httpx stays quiet)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%Y-%m-%d %H:%M:%S"))
    logger = logging.getLogger("latbench")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False
