"""FBNet (HW-NAS-Bench CIFAR): canonical strings, sampling, encodings and costs."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pytest

from latbench.errors import InvalidArchitecture
from latbench.spaces import get_space
from latbench.spaces.fbnet import BLOCKS, MACRO

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.fixture(scope="module")
def fbnet():
    return get_space("fbnet")


def test_public_table_strings_are_canonical(fbnet):
    with gzip.open(DATA / "fbnet_latency.csv.gz", "rt") as f:
        archs = {row["arch"] for row in csv.DictReader(f)}
    assert len(archs) == 5000
    assert all(fbnet.canonical(a) == a for a in archs)


def test_macro_network_matches_hw_nas_bench_cifar():
    assert len(MACRO) == 22
    assert [layer.c_out for layer in MACRO] == [16] + [24] * 4 + [32] * 4 + [64] * 4 + [112] * 4 + [184] * 4 + [352]
    assert [i for i, layer in enumerate(MACRO) if layer.stride == 2] == [5, 9, 17]
    assert MACRO[0].c_in == 16 and all(MACRO[i].c_in == MACRO[i - 1].c_out for i in range(1, 22))


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("k3_e1", "has 1 layer(s), expected 22"),
        ("-".join(["k3_e1"] * 21 + ["k7_e1"]), "layer 21: 'k7_e1'"),
        ("-".join(["k3_e1"] * 23), "has 23 layer(s)"),
    ],
)
def test_bad_strings_say_what_is_wrong(fbnet, bad, says):
    with pytest.raises(InvalidArchitecture, match="blocks joined by '-'") as info:
        fbnet.canonical(bad)
    assert says in str(info.value)


def test_sampling_is_seeded_and_uses_every_block(fbnet):
    a = fbnet.sample(300, seed=7)
    assert a == fbnet.sample(300, seed=7) and a != fbnet.sample(300, seed=8)
    assert len(set(a)) == 300
    used = {b for arch in a for b in arch.split("-")}
    assert used == set(BLOCKS)


def test_params_by_hand(fbnet):
    # All skip: stem 3*16*9 + 32 = 464; layer 0 (16->16, s1) identity; layer 1 16->24 1x1 conv: 16*24 + 48 = 432;
    # layers 5, 9, 13, 17, 21 change channels or stride: 24*32+64, 32*64+128, 64*112+224, 112*184+368, 184*352+704;
    # head 352*1504 + 2*1504; classifier 1504*100 + 100.
    skips = 464 + 432 + (24 * 32 + 64) + (32 * 64 + 128) + (64 * 112 + 224) + (112 * 184 + 368) + (184 * 352 + 704)
    head = 352 * 1504 + 2 * 1504 + 1504 * 100 + 100
    assert fbnet.costs("-".join(["skip"] * 22)).params == skips + head
    # k3_e1 in layer 0 (16->16, stride 1): 1x1 16*16 + 32, dw 16*9 + 32, 1x1 16*16 + 32.
    k3e1 = 16 * 16 + 32 + 16 * 9 + 32 + 16 * 16 + 32
    assert fbnet.costs("-".join(["k3_e1"] + ["skip"] * 21)).params == skips + head + k3e1
    # with two groups the 1x1 convs halve: 8*16 + 32 twice.
    k3e1g2 = 8 * 16 + 32 + 16 * 9 + 32 + 8 * 16 + 32
    assert fbnet.costs("-".join(["k3_e1_g2"] + ["skip"] * 21)).params == skips + head + k3e1g2


def test_costs_grow_with_expansion_and_kernel(fbnet):
    base = ["k3_e1"] * 22
    costs = {b: fbnet.costs("-".join([*base[:3], b, *base[4:]])) for b in ("k3_e1", "k3_e3", "k3_e6", "k5_e6")}
    assert costs["k3_e1"].macs < costs["k3_e3"].macs < costs["k3_e6"].macs < costs["k5_e6"].macs
    assert fbnet.costs("-".join(base), classes=10).params < fbnet.costs("-".join(base)).params


def test_graph_encoding_is_a_chain(fbnet):
    arch = fbnet.sample(1, seed=0)[0]
    g = fbnet.encode(arch)
    assert g.num_nodes == 24
    assert [g.vocabulary[o] for o in g.ops[1:-1]] == arch.split("-")
    assert np.array_equal(g.adjacency, np.eye(24, k=1, dtype=np.uint8))
