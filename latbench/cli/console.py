"""The consoles every command shares: stdout for results, stderr for progress and messages."""

from __future__ import annotations

from rich.console import Console

out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True)
