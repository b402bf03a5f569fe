"""The consoles every command shares: stdout for results, stderr for progress and messages.

Neither parses rich markup: what is printed (error messages, dataset names, paths, architectures) is shown as
written, brackets included; styled parts are ``rich.text.Text`` objects.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

out = Console(soft_wrap=True, highlight=False, markup=False)
err = Console(stderr=True, soft_wrap=True, markup=False)


def styled(label: str, style: str, message: str) -> Text:
    """``label`` in ``style``, then ``message`` verbatim."""
    return Text.assemble((label, style), " ", message)
