"""The arch2vec autoencoder learns to rebuild graphs it never saw, deterministically for a seed."""

from __future__ import annotations

import numpy as np
import pytest

from latbench.predictor.encodings.arch2vec import train_arch2vec
from latbench.spaces import get_space


@pytest.mark.slow
def test_held_out_graphs_are_rebuilt_better_than_chance() -> None:
    archs = get_space("nb201").sample(1000, seed=3)
    table = train_arch2vec("nb201", archs=archs, seed=0, epochs=6, batch_size=32)
    held = table.meta["held_out"]
    # Chance: the majority class of each target (7 ops of the 8 nodes are uniform over 5 ops; 10 of 28 edges).
    ops_chance = (2 + 6 * 1 / 5) / 8
    adjacency_chance = 18 / 28
    assert held["ops_accuracy"] > ops_chance + 0.15, held
    assert held["adjacency_accuracy"] > adjacency_chance + 0.05, held
    assert table.values.shape == (1000, 16) and table.values.dtype == np.float32


def test_training_is_deterministic_for_a_seed() -> None:
    archs = get_space("nb201").sample(300, seed=4)
    a = train_arch2vec("nb201", archs=archs, seed=7, epochs=1)
    b = train_arch2vec("nb201", archs=archs, seed=7, epochs=1)
    np.testing.assert_array_equal(a.values, b.values)
    assert a.encoder.keys() == b.encoder.keys()
