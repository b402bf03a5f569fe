"""An interrupted zero-cost-proxy run keeps its finished rows and resumes from them instead of starting over."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from latbench.datasets import space_archs
from latbench.predictor.encodings import ZcpInterrupted, load, zcp
from latbench.predictor.encodings.zcp import NAMES, _meta, _save_partial, compute_zcp
from latbench.progress import ProgressEvent
from latbench.spaces import get_space


def test_a_matching_checkpoint_is_resumed_and_a_stale_one_ignored(tmp_path: Path) -> None:
    archs = tuple(get_space("nb201").archs()[:3])  # type: ignore[attr-defined]
    settings = {"seed": 0, "batch_size": 4, "resolution": 8}
    checkpoint = tmp_path / "nb201-zcp.partial.npz"
    marked = np.full((3, len(NAMES)), 42.0, dtype=np.float32)
    _save_partial(checkpoint, "nb201", archs, _meta("nb201", **settings), marked, 2)
    resumed = compute_zcp("nb201", archs, checkpoint=checkpoint, **settings)
    assert np.all(resumed.values[:2] == 42.0)
    fresh = compute_zcp("nb201", archs[2:], **settings)
    np.testing.assert_array_equal(resumed.values[2], fresh.values[0])
    other_seed = compute_zcp("nb201", archs, checkpoint=checkpoint, **settings | {"seed": 1})
    assert not np.any(other_seed.values == 42.0)


@pytest.mark.slow  # computes 10 rows
def test_ctrl_c_saves_the_finished_rows_and_a_rerun_resumes_from_them(tmp_path: Path) -> None:
    archs = tuple(space_archs("nb201")[:4])
    checkpoint = tmp_path / "nb201-zcp.partial.npz"

    def ctrl_c_after_two_rows(event: ProgressEvent) -> None:
        if event.done == 2:
            raise KeyboardInterrupt

    with pytest.raises(ZcpInterrupted) as interrupted:
        compute_zcp("nb201", archs, 0, ctrl_c_after_two_rows, batch_size=4, resolution=8, checkpoint=checkpoint)
    assert (interrupted.value.rows, interrupted.value.total, interrupted.value.checkpoint) == (2, 4, checkpoint)
    assert load("nb201", "zcp", path=checkpoint).archs == archs[:2]
    started: list[int | None] = []
    resumed = compute_zcp(
        "nb201", archs, 0, lambda e: started.append(e.done), batch_size=4, resolution=8, checkpoint=checkpoint
    )
    assert started[0] == 2
    np.testing.assert_array_equal(resumed.values, compute_zcp("nb201", archs, batch_size=4, resolution=8).values)


def test_ctrl_c_during_the_first_row_is_a_plain_interrupt_that_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def ctrl_c(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(zcp, "score_arch", ctrl_c)
    checkpoint = tmp_path / "nb201-zcp.partial.npz"
    with pytest.raises(KeyboardInterrupt) as interrupted:
        compute_zcp("nb201", space_archs("nb201")[:2], batch_size=4, resolution=8, checkpoint=checkpoint)
    assert type(interrupted.value) is KeyboardInterrupt and not checkpoint.exists()
