"""The quickstart report tells a reader, above the SRCC table, when the figures rest on unstable results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from latbench.quickstart.evaluate import Evaluation
from latbench.quickstart.report import write_report

WARNING = "3 of 11 results are unstable (high variation between runs). Re-run when it is idle, or use --wait-idle."


def _report(path: Path, stability: str | None, left_out: int) -> str:
    transfer, holdout = [f"t{i}" for i in range(4)], [f"h{i}" for i in range(4)]
    measured = {a: 1.0 + i for i, a in enumerate(transfer + holdout)}
    evaluation = Evaluation(4, 0.8, 0.5, "pixel3", 0.7, {"pixel3": 0.7})
    write_report(
        path,
        space="nb201",
        device="desk",
        transfer=transfer,
        holdout=holdout,
        measured=measured,
        predicted_holdout=np.array([measured[a] for a in holdout]),
        predicted_transfer=np.array([measured[a] for a in transfer]),
        evaluation=evaluation,
        timings={"plan": 0.1},
        outputs={"report": str(path)},
        stability=stability,
        left_out=left_out,
    )
    return path.read_text()


@pytest.mark.slow
def test_a_warning_box_sits_above_the_srcc_table(tmp_path):
    page = _report(tmp_path / "left-out.html", WARNING, 3)
    assert "class='warning'" in page and page.index(WARNING) < page.index("Rank correlation (SRCC)")
    assert "The 3 unstable results were left out of the transfer and the evaluation." in page
    used = _report(tmp_path / "used.html", WARNING, 0)
    assert "They were used (--include-unstable)" in used
    assert "class='warning'" not in _report(tmp_path / "stable.html", None, 0)
