"""The consoles every command prints with (stdout for results, stderr for progress and messages) and its table.

Neither parses rich markup: what is printed (error messages, dataset names, paths, architectures) is shown as
written, brackets included; styled parts are ``rich.text.Text`` objects. Nor does either pass on control
characters: much of what is printed came from agents (a device's CPU model, an error, an operator's name), and an
escape sequence among it would drive the reader's terminal (clear it, print forged lines); it is shown escaped.
"""

from __future__ import annotations

import os
import re
import sys
from datetime import datetime, timezone
from typing import Any, TextIO

import rich.table
from rich.console import Console, RenderableType
from rich.text import Text

PIPE_WIDTH = 1000
"""The width a pipe or file is printed at: it has none, and rich's 80 columns would cut ids and names short."""


def _width(stream: TextIO | None) -> int | None:
    """None (rich's own: the terminal's width, or ``COLUMNS``) for a terminal or where ``COLUMNS`` is set; else
    ``PIPE_WIDTH``, so that a table piped on (``latbench campaign list | grep``) keeps its cells whole."""
    if "COLUMNS" in os.environ or stream is None or stream.isatty():
        return None
    return PIPE_WIDTH


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""Control characters but tab and newline: ESC starts terminal sequences, CR overwrites a line, C1 codes (CSI
among them) act like ESC sequences on some terminals."""


def printable(text: str) -> str:
    """``text`` with every control character but tab and newline shown as ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class _Console(Console):
    """A console whose strings, table cells included, are shown with ``printable``: rich renders every string it
    prints or lays out through ``render_str``. (``Text`` objects are built with ``styled``, which does the same.)"""

    def render_str(self, text: str, **options: Any) -> Text:
        return super().render_str(printable(text), **options)


out = _Console(soft_wrap=True, highlight=False, markup=False, width=_width(sys.stdout))
err = _Console(stderr=True, soft_wrap=True, markup=False, width=_width(sys.stderr))


class Table(rich.table.Table):
    """rich's table, with cells too long for their column folded onto the next line where rich would end them in
    "…": an id or a name is never cut short, however narrow the terminal."""

    def add_column(self, header: RenderableType = "", footer: RenderableType = "", **options: Any) -> None:
        super().add_column(header, footer, **{"overflow": "fold", **options})


def styled(label: str, style: str, message: str) -> Text:
    """``label`` in ``style``, then ``message`` verbatim (control characters escaped)."""
    return Text.assemble((label, style), " ", printable(message))


def aware(moment: datetime) -> datetime:
    """``moment`` with its zone, UTC where the collector sent none."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def minute(moment: datetime | None) -> str:
    """``moment`` to the minute in UTC, ``-`` for none."""
    return aware(moment).strftime("%Y-%m-%d %H:%M") if moment is not None else "-"


_UNITS = (("d", 86400), ("h", 3600), ("min", 60))


def ago(moment: datetime | None, now: datetime) -> str:
    """How long before ``now`` ``moment`` was, in its largest whole unit (a token's age may be months); ``-`` for
    none."""
    if moment is None:
        return "-"
    seconds = max(0, int((now - aware(moment)).total_seconds()))
    return next((f"{seconds // size} {unit} ago" for unit, size in _UNITS if seconds >= size), f"{seconds} s ago")
