"""One shape for following long-running work: every long-running API takes ``progress: Progress | None`` and
calls it with a ``ProgressEvent``, so that a front end (the CLI's rich bars, a notebook, a log) needs one adapter
for all of them.

An event names the ``stage`` running and carries a count (``done`` of ``total``; ``total`` None while unknown), a
``message`` for a person, or neither (the stage has started).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ProgressEvent:
    stage: str
    done: int | None = None
    total: int | None = None
    message: str = ""


Progress = Callable[[ProgressEvent], None]


def notify(
    progress: Progress | None, stage: str, done: int | None = None, total: int | None = None, message: str = ""
) -> None:
    """Tell ``progress``, if any, where ``stage`` stands."""
    if progress is not None:
        progress(ProgressEvent(stage, done, total, message))
