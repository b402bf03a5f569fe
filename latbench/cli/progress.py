"""The CLI's one adapter from ``latbench.progress`` events to the terminal: a rich bar per stage on stderr,
messages printed above the bars."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from latbench.cli.console import err
from latbench.progress import ProgressEvent


class ProgressBars:
    """Callable as a ``latbench.progress.Progress``; use as a context manager while bars are shown.

    ``labels`` names the stages that get a bar and their text (None: every stage, under its own name). When a
    stage starts, the earlier ones are complete: shown full, or hidden when they had nothing to do and
    ``hide_empty``. ``fields`` are the initial values of extra fields the columns show.
    """

    def __init__(
        self,
        *columns: str | ProgressColumn,
        labels: Mapping[str, str] | None = None,
        hide_empty: bool = False,
        **fields: Any,
    ) -> None:
        self.rich = Progress(*columns, console=err)
        self._labels = labels
        self._hide_empty = hide_empty
        self._fields = fields
        self._rows: dict[str, TaskID] = {}

    def __enter__(self) -> ProgressBars:
        self.rich.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if any(task.visible for task in self.rich.tasks):
            self.rich.stop()
        else:  # nothing was shown: no empty line either (rich ends a display with one where stderr is no terminal)
            self.rich.live.transient = True
            self.rich.live.stop()

    def __call__(self, event: ProgressEvent) -> None:
        if event.message:
            err.print(event.message, highlight=False)
        if self._labels is not None and event.stage not in self._labels:
            return
        if event.stage not in self._rows:
            self._finish_rows()
            label = event.stage if self._labels is None else self._labels[event.stage]
            self._rows[event.stage] = self.rich.add_task(label, total=None, **self._fields)
        if event.done is not None:
            self.rich.update(self._rows[event.stage], completed=event.done, total=event.total)

    def annotate(self, stage: str, **fields: Any) -> None:
        """Set fields that the columns show on the bar of ``stage``, once it has started."""
        if stage in self._rows:
            self.rich.update(self._rows[stage], **fields)

    def finish(self) -> None:
        """Show every stage complete."""
        self._finish_rows()

    def _finish_rows(self) -> None:
        for task_id in self._rows.values():
            task = next(t for t in self.rich.tasks if t.id == task_id)
            if self._hide_empty and not task.total:
                self.rich.update(task_id, visible=False)
            else:
                self.rich.update(task_id, completed=task.total or 1, total=task.total or 1)


def counting_bars() -> ProgressBars:
    """Bars for stages that count steps: name, bar, done/total, elapsed, remaining."""
    return ProgressBars(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
