"""The space hooks a search reads to stay away from degenerate networks: ``is_degenerate`` and
``effective_costs``, with defaults that accept every architecture and count every layer."""

from __future__ import annotations

import numpy as np

from latbench.spaces import get_space

DEAD_BRANCH = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
"""Connected through the skip edge 0 -> 3; the 3x3 conv into node 1 feeds nothing that reaches the output."""
CUT = "|nor_conv_1x1~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|"
"""Node 2 has only ``none`` inputs, so the conv 2 -> 3 reads a constant: the output ignores the input."""


def test_nb201_calls_exactly_its_disconnected_cells_degenerate() -> None:
    nb201 = get_space("nb201")
    archs = nb201.archs()
    degenerate = {a for a in archs if nb201.is_degenerate(a)}
    assert degenerate == {a for a in archs if not nb201.is_connected(a)}
    assert len(degenerate) == 341
    assert not degenerate & set(nb201.sample(len(archs) - 341, seed=0, connected_only=True))
    assert nb201.is_degenerate(CUT) and not nb201.is_degenerate(DEAD_BRANCH)


def test_by_default_a_space_calls_nothing_degenerate_and_counts_every_layer() -> None:
    fbnet = get_space("fbnet")
    for arch in fbnet.sample(20, seed=0):
        assert not fbnet.is_degenerate(arch)
        assert fbnet.effective_costs(arch) == fbnet.costs(arch)


def test_nb201_effective_costs_leave_out_edges_off_every_input_output_path() -> None:
    nb201 = get_space("nb201")
    live = "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
    assert nb201.effective_costs(DEAD_BRANCH) == nb201.costs(live)
    assert nb201.effective_costs(DEAD_BRANCH).params < nb201.costs(DEAD_BRANCH).params
    assert nb201.effective_costs(CUT) == nb201.costs("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    whole = [a for a in nb201.sample(300, seed=1, connected_only=True) if "none" not in a]
    assert whole and all(nb201.effective_costs(a) == nb201.costs(a) for a in whole)
    effective = np.array([nb201.effective_costs(a).macs for a in nb201.sample(300, seed=2)])
    assert np.all(effective <= np.array([nb201.costs(a).macs for a in nb201.sample(300, seed=2)]))
