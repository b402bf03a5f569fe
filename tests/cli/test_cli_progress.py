"""One progress shape: APIs report ``ProgressEvent``s, and the CLI's one adapter turns them into bars and lines."""

from __future__ import annotations

import numpy as np

from latbench.cli.progress import ProgressBars
from latbench.progress import ProgressEvent
from latbench.search import search


def test_bars_follow_the_stages_and_print_messages(capsys):
    bars = ProgressBars(labels={"plan": "choosing", "measure": "measuring"})
    for event in (
        ProgressEvent("plan"),
        ProgressEvent("measure", 0, 3),
        ProgressEvent("measure", 2, 3),
        ProgressEvent("measure", message="1 architecture(s) [red]failed[/red]"),
        ProgressEvent("dataset", 1, 1),
    ):
        bars(event)
    plan, measure = bars.rich.tasks
    assert (plan.description, plan.completed, plan.total) == ("choosing", 1, 1)
    assert (measure.description, measure.completed, measure.total) == ("measuring", 2, 3)
    bars.finish()
    assert measure.completed == 3
    assert "1 architecture(s) [red]failed[/red]" in capsys.readouterr().err


def test_a_stage_with_nothing_to_do_can_hide():
    bars = ProgressBars(hide_empty=True, last="")
    bars(ProgressEvent("export", 0, 0))
    bars(ProgressEvent("measure", 1, 4))
    bars.annotate("measure", last="1.000 ms")
    export, measure = bars.rich.tasks
    assert not export.visible and measure.visible
    assert measure.fields["last"] == "1.000 ms" and export.fields["last"] == ""


def test_search_reports_the_architectures_rated():
    for method in ("evolution", "random"):
        events: list[ProgressEvent] = []
        result = search(lambda a: np.ones(len(a)), "nb201", 2.0, method=method, budget=300, progress=events.append)
        assert {e.stage for e in events} == {"search"} and {e.total for e in events} == {300}
        counts = [e.done for e in events]
        assert len(counts) > 1 and counts == sorted(counts) and counts[-1] == result.queried
