"""An interrupted zero-cost-proxy run resumes from its checkpoint instead of starting over."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from latbench.predictor.encodings.zcp import NAMES, _meta, _save_partial, compute_zcp
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
