"""OFA MobileNetV3 (HELP's ``ofa-mbv3``): canonical strings, network keys, sampling, encodings, genes and costs."""

from __future__ import annotations

import csv
import gzip
import math
import re
from pathlib import Path

import numpy as np
import pytest

from latbench.errors import InvalidArchitecture, LatbenchError
from latbench.spaces import Costs, get_space
from latbench.spaces.ofa import (
    FINAL_EXPAND_CHANNELS,
    LAST_CHANNELS,
    SLOT_TABLE,
    STAGES,
    STEM_CHANNELS,
)

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
ROW_0 = "ks=7,5,5,5,7,7,5,7,5,7,3,7,5,3,7,3,5,3,5,3|e=6,4,4,6,6,3,4,3,3,6,3,3,3,6,3,4,6,4,3,6|d=2,2,2,2,3|r=204"


def arch(ks: list[int], e: list[int], d: list[int], r: int) -> str:
    return f"ks={','.join(map(str, ks))}|e={','.join(map(str, e))}|d={','.join(map(str, d))}|r={r}"


SMALLEST = arch([3] * 20, [3] * 20, [2] * 5, 128)
LARGEST = arch([7] * 20, [6] * 20, [4] * 5, 224)


@pytest.fixture(scope="module")
def ofa():
    return get_space("ofa-mbv3")


@pytest.fixture(scope="module")
def table() -> list[str]:
    with gzip.open(DATA / "ofa_latency.csv.gz", "rt") as f:
        return [row["arch"] for row in csv.DictReader(f)]


def test_every_public_string_is_canonical_and_a_distinct_network(ofa, table):
    assert len(table) == 5000
    assert all(ofa.canonical(a) == a for a in table)
    assert len({ofa.network_key(a) for a in table}) == 5000


def test_macro_network_is_ofa_w1_2():
    assert [s.width for s in STAGES] == [32, 48, 96, 136, 192]
    assert [s.stride for s in STAGES] == [2, 2, 2, 1, 2]
    assert [s.se for s in STAGES] == [False, True, False, True, True]
    assert (STEM_CHANNELS, FINAL_EXPAND_CHANNELS, LAST_CHANNELS) == (24, 1152, 1536)
    assert [slot.c_in for slot in SLOT_TABLE[::4]] == [24, 32, 48, 96, 136]
    assert [j for j, slot in enumerate(SLOT_TABLE) if not slot.residual] == [0, 4, 8, 12, 16]


def test_network_key_zeroes_exactly_the_unused_slots(ofa):
    assert ofa.network_key(ROW_0) == (
        "ks=7,5,0,0,7,7,0,0,5,7,0,0,5,3,0,0,5,3,5,0|e=6,4,0,0,6,3,0,0,3,6,0,0,3,6,0,0,6,4,3,0|d=2,2,2,2,3|r=204"
    )
    unused_changed = ROW_0.replace("ks=7,5,5,5", "ks=7,5,3,3")
    used_changed = ROW_0.replace("ks=7,5,5,5", "ks=3,5,5,5")
    assert ofa.canonical(unused_changed) != ROW_0
    assert ofa.network_key(unused_changed) == ofa.network_key(ROW_0)
    assert ofa.costs(unused_changed) == ofa.costs(ROW_0)
    assert ofa.network_key(used_changed) != ofa.network_key(ROW_0)
    assert ofa.network_key(ROW_0.replace("r=204", "r=208")) != ofa.network_key(ROW_0)


def test_sampling_is_seeded_distinct_and_draws_every_slot(ofa):
    a = ofa.sample(500, seed=7)
    assert a == ofa.sample(500, seed=7) and a != ofa.sample(500, seed=8)
    assert ofa.sample(20, seed=7) == a[:20]
    assert len({ofa.network_key(x) for x in a}) == 500
    assert all(ofa.canonical(x) == x for x in a)
    genes = np.array([ofa.to_genes(x) for x in a])
    assert all(set(genes[:, i]) == set(range(k)) for i, k in enumerate(ofa.genes))
    # the unused slots hold drawn values, as in HELP's data, not zeros
    assert "0" not in {v for x in a for v in x.split("|")[0][3:].split(",")}


def test_sampling_is_the_same_on_every_machine(ofa):
    # numpy's Generator (PCG64) is specified bit for bit, so this string is the same everywhere
    assert ofa.sample(1, seed=0) == [
        "ks=7,5,5,3,3,3,3,3,3,7,5,7,5,5,7,7,5,5,5,7|e=3,6,6,3,4,6,4,3,6,6,6,3,3,6,3,4,3,3,4,4|d=3,2,2,2,2|r=192"
    ]


def test_sampling_refuses_impossible_sizes(ofa):
    with pytest.raises(LatbenchError, match="negative"):
        ofa.sample(-1)
    assert ofa.sample(0) == []


def test_graph_encoding_is_a_chain_with_the_resolution_at_the_input(ofa):
    g = ofa.encode(ROW_0)
    assert g.num_nodes == 22
    names = [g.vocabulary[o] for o in g.ops]
    assert names[0] == "r204" and names[-1] == "output"
    assert names[1:5] == ["mb_k7_e6", "mb_k5_e4", "skip", "skip"]
    assert names[17:21] == ["mb_k5_e6", "mb_k3_e4", "mb_k5_e3", "skip"]
    assert np.array_equal(g.adjacency, np.eye(22, k=1, dtype=np.uint8))
    assert len(ofa.vocabulary) == len(set(ofa.vocabulary)) == 25 + 9 + 2


def test_encode_batch_stacks_the_single_encodings(ofa):
    archs = [ROW_0, SMALLEST, LARGEST, *ofa.sample(20, seed=1)]
    ops, adjacency = ofa.encode_batch(archs)
    assert ops.dtype == np.int64 and ops.shape == (23, 22)
    assert adjacency.dtype == np.float32 and adjacency.shape == (22, 22)
    assert all(np.array_equal(ops[i], ofa.encode(a).ops) for i, a in enumerate(archs))
    assert np.array_equal(adjacency, ofa.encode(ROW_0).adjacency)


def test_genes_round_trip(ofa, table):
    assert ofa.genes == (3,) * 45 + (25,)
    for a in [*table[:200], SMALLEST, LARGEST]:
        genes = ofa.to_genes(a)
        assert len(genes) == 46 and all(0 <= g < k for g, k in zip(genes, ofa.genes))
        assert ofa.from_genes(genes) == a
    assert ofa.from_genes([0] * 46) == SMALLEST
    assert ofa.from_genes([2] * 45 + [24]) == LARGEST


@pytest.mark.parametrize(
    ("genes", "says"),
    [
        ([0] * 45, "has 46 genes, got 45"),
        ([0] * 45 + [25], "gene 45 = 25 (choices 0..24)"),
        ([3] + [0] * 45, "gene 0 = 3"),
    ],
)
def test_bad_genes_say_what_is_wrong(ofa, genes, says):
    with pytest.raises(InvalidArchitecture, match=re.escape(says)):
        ofa.from_genes(genes)


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        (ROW_0.replace("ks=7,5,", "ks=5,"), "has 19 ks value(s), expected 20"),
        (ROW_0.replace("|d=2,2,2,2,3", "|d=2,2,2,2,3,2"), "has 6 d value(s), expected 5"),
        (ROW_0.replace("ks=7,", "ks=9,"), "ks[0] = '9' in"),
        (ROW_0.replace("e=6,", "e=2,"), "is not one of 3, 4, 6"),
        (ROW_0.replace("d=2,", "d=1,"), "is not one of 2, 3, 4"),
        (ROW_0.replace("r=204", "r=206"), "r[0] = '206' in"),
        (ROW_0.replace("r=204", "r=240"), "not one of 128..224 step 4"),
        (ROW_0.replace("r=204", "r=abc"), "r[0] = 'abc'"),
        (ROW_0.split("|r=")[0], "lacks field(s) r"),
        (ROW_0 + "|r=204", "field 'r' appears twice"),
        (ROW_0.replace("ks=", "k="), "unknown field 'k=7"),
        ("", "unknown field ''"),
    ],
)
def test_bad_strings_say_what_is_wrong(ofa, bad, says):
    with pytest.raises(InvalidArchitecture, match="OFA MobileNetV3 architecture is") as info:
        ofa.canonical(bad)
    assert says in str(info.value)
    assert "\n" not in str(info.value)


def test_canonical_accepts_fields_in_any_order_and_spaces(ofa):
    parts = ROW_0.split("|")
    assert ofa.canonical(" | ".join(reversed(parts))) == ROW_0
    assert ofa.canonical(ROW_0.replace(",", ", ")) == ROW_0


def test_input_resolution_is_the_architectures_own(ofa):
    assert ofa.input_resolution(ROW_0) == 204
    assert ofa.input_resolution(SMALLEST) == 128
    assert ofa.default_resolution == 224 and ofa.default_classes == 1000
    assert ofa.builder == "latbench.spaces.builders.ofa:build"
    with pytest.raises(LatbenchError, match="at least 32"):
        ofa.validate_resolution(16)


def test_costs_of_the_smallest_and_largest_networks(ofa):
    assert ofa.costs(SMALLEST) == Costs(macs=65_536_896, params=4_602_456)
    assert ofa.costs(LARGEST) == Costs(macs=843_101_040, params=10_701_632)


def test_costs_follow_resolution_and_classes(ofa):
    base = ofa.costs(ROW_0)
    assert ofa.costs(ROW_0, resolution=204) == base
    assert ofa.costs(ROW_0, resolution=224).macs > base.macs
    assert ofa.costs(ROW_0, resolution=224).params == base.params
    assert ofa.costs(ROW_0, classes=10).params == base.params - 990 * 1537
    assert ofa.costs(SMALLEST).macs < base.macs < ofa.costs(LARGEST).macs
    with pytest.raises(LatbenchError, match="at least 32"):
        ofa.costs(ROW_0, resolution=8)


def test_cost_features_of_the_public_table(ofa, table):
    names = ofa.cost_feature_names()
    features = ofa.cost_features(table)
    assert features.dtype == np.float64 and features.shape == (5000, len(names)) == (5000, 16)
    assert np.isfinite(features).all()
    col = {n: features[:, i] for i, n in enumerate(names)}
    for i in (0, 4072, 4556):
        c = ofa.costs(table[i])
        assert col["log_macs"][i] == pytest.approx(math.log(c.macs))
        assert col["log_params"][i] == pytest.approx(math.log(c.params))
    blocks = sum(col[n] for n in names if n.startswith("blocks_"))
    depths = np.array([sum(map(int, a.split("|d=")[1].split("|")[0].split(","))) for a in table])
    assert np.array_equal(blocks, depths)
    assert np.all(col["log_pointwise_macs"] < col["log_macs"]) and np.all(col["log_depthwise_macs"] < col["log_macs"])
    assert np.all((col["se_blocks"] >= 6) & (col["se_blocks"] <= 12))
    assert np.all(col["launches"] > 0)


def test_cost_features_of_one_architecture_by_hand(ofa):
    row = dict(zip(ofa.cost_feature_names(), ofa.cost_features([SMALLEST])[0]))
    assert row["blocks_k3_e3"] == 10 and row["se_blocks"] == 6
    # stem 1; first block dw, project, add 3; 10 blocks: expand, dw, project 3 each, 6 SE blocks 4 more each,
    # 5 residual adds; final expand, pool, feature mix, classifier 4.
    assert row["launches"] == 1 + 3 + 30 + 24 + 5 + 4


def test_built_networks_have_the_analytic_costs(ofa):
    """The one slow test: the smallest and largest networks and a public row, counted as they run."""
    from latbench.spaces.builders.ofa import build
    from tests.spaces.test_builders import count_macs, count_params

    for a in (SMALLEST, LARGEST, ROW_0):
        model = build(a, 1000).eval()
        costs = ofa.costs(a)
        assert count_params(model) == costs.params, a
        assert count_macs(model, ofa.input_resolution(a)) == costs.macs, a


@pytest.mark.slow
def test_a_built_network_runs_and_exports_to_onnx(ofa, tmp_path):
    import onnxruntime as ort
    import torch

    from latbench.artifacts import OPSET, ArtifactKey, export_onnx
    from latbench.spaces.builders import build_model

    small = SMALLEST.replace("r=128", "r=132")
    key = ArtifactKey("ofa-mbv3", small, batch=1, resolution=132, classes=1000, opset=OPSET, seed=0)
    export_onnx(key, tmp_path / "ofa.onnx")
    x = torch.randn(1, 3, 132, 132, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = build_model("ofa-mbv3", small).eval()(x).numpy()
    assert expected.shape == (1, 1000) and np.isfinite(expected).all()
    session = ort.InferenceSession(str(tmp_path / "ofa.onnx"), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": x.numpy()})
    assert np.allclose(got, expected, rtol=1e-3, atol=1e-3)
