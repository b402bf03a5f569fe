"""NAS-Bench-201: canonical strings, the official index, connectivity, sampling, encodings and costs."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pytest

from latbench.errors import InvalidArchitecture, LatbenchError
from latbench.spaces import get_space
from latbench.spaces.nb201 import NUM_ARCHS

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
INDEX0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
ALL_CONV3 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


@pytest.fixture(scope="module")
def nb201():
    return get_space("nb201")


def public_index() -> dict[str, int]:
    with gzip.open(DATA / "nb201_latency.csv.gz", "rt") as f:
        rows = csv.DictReader(f)
        first = next(rows)
        mapping = {first["arch"]: int(first["arch_index"])}
        for row in rows:
            if row["device"] != first["device"]:
                break
            mapping[row["arch"]] = int(row["arch_index"])
    return mapping


def test_every_cell_matches_the_public_table_string_and_index(nb201):
    mapping = public_index()
    archs = nb201.archs()
    assert len(archs) == len(set(archs)) == NUM_ARCHS == len(mapping)
    for i, arch in enumerate(archs):
        assert mapping[arch] == i
    assert all(nb201.index(a) == i for a, i in list(mapping.items())[::97])
    assert nb201.from_index(0) == INDEX0


def test_341_cells_have_no_input_output_path(nb201):
    disconnected = [a for a in nb201.archs() if not nb201.is_connected(a)]
    assert len(disconnected) == 341
    assert not nb201.is_connected("|none~0|+|skip_connect~0|none~1|+|none~0|none~1|none~2|")
    assert nb201.is_connected("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    assert not nb201.is_connected("|skip_connect~0|+|skip_connect~0|none~1|+|none~0|none~1|none~2|")


def test_sampling_is_seeded_distinct_and_optionally_connected(nb201):
    a = nb201.sample(200, seed=3)
    assert a == nb201.sample(200, seed=3)
    assert a != nb201.sample(200, seed=4)
    assert len(set(a)) == 200
    connected = nb201.sample(2000, seed=1, connected_only=True)
    assert all(nb201.is_connected(x) for x in connected)
    assert len(nb201.sample(NUM_ARCHS, seed=0)) == NUM_ARCHS
    with pytest.raises(LatbenchError, match="only 15284"):
        nb201.sample(15285, connected_only=True)


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("", "node group"),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|", "2 node group"),
        ("|conv3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown operation 'conv3x3'"),
        ("|none~0|+|none~1|none~1|+|none~0|none~1|none~2|", "must read 'op~0'"),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", "2 incoming edge"),
        ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "wrapped in '|'"),
    ],
)
def test_bad_strings_say_what_is_wrong_and_show_a_valid_one(nb201, bad, says):
    with pytest.raises(InvalidArchitecture, match="valid NB201 architecture looks like") as info:
        nb201.canonical(bad)
    assert says in str(info.value)


def test_canonical_strips_whitespace_and_round_trips(nb201):
    assert nb201.canonical(f"  {INDEX0}\n") == INDEX0


def test_params_by_hand(nb201):
    # stem 3*16*9 + 2*16 = 464; lastact BN 2*64 = 128; classifier 64*10 + 10 = 650;
    # reductions 16->32: 16*32*9 + 64 + 32*32*9 + 64 + 16*32 = 14464; 32->64: 57600.
    fixed = 464 + 128 + 650 + 14464 + 57600
    assert nb201.costs("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|").params == fixed
    no_weights = "|skip_connect~0|+|avg_pool_3x3~0|skip_connect~1|+|none~0|avg_pool_3x3~1|none~2|"
    assert nb201.costs(no_weights).params == fixed
    # each nor_conv_3x3 edge, per stage: C*C*9 + 2C; five cells per stage, six edges per cell.
    conv3 = 30 * sum(c * c * 9 + 2 * c for c in (16, 32, 64))
    assert nb201.costs(ALL_CONV3).params == fixed + conv3 == 1_531_546
    one_1x1 = 5 * sum(c * c + 2 * c for c in (16, 32, 64))
    assert nb201.costs("|nor_conv_1x1~0|+|none~0|none~1|+|none~0|none~1|none~2|").params == fixed + one_1x1


def test_macs_scale_with_resolution_and_classes_change_params(nb201):
    small, big = nb201.costs(ALL_CONV3, resolution=32), nb201.costs(ALL_CONV3, resolution=64)
    assert big.macs - 64 * 10 == 4 * (small.macs - 64 * 10)
    assert nb201.costs(ALL_CONV3, classes=100).params - small.params == 64 * 90 + 90
    with pytest.raises(LatbenchError, match="multiple of 4"):
        nb201.costs(ALL_CONV3, resolution=30)


def test_graph_encoding(nb201):
    g = nb201.encode(INDEX0)
    assert [g.vocabulary[o] for o in g.ops] == [
        "input", "avg_pool_3x3", "nor_conv_1x1", "skip_connect", "nor_conv_1x1", "skip_connect", "skip_connect",
        "output",
    ]  # fmt: skip
    edges = {(int(i), int(j)) for i, j in zip(*np.nonzero(g.adjacency))}
    # input feeds the edges leaving node 0; edge 1<-0 feeds edges leaving node 1; edges into node 3 feed output.
    assert edges == {(0, 1), (0, 2), (0, 4), (1, 3), (1, 5), (2, 6), (3, 6), (4, 7), (5, 7), (6, 7)}
    assert np.all(np.triu(g.adjacency, 1) == g.adjacency)
    assert g.one_hot().shape == (8, 7) and g.one_hot().sum() == 8
