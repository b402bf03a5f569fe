"""Zero-cost proxies on small real networks: finite, ordered as their definitions imply, seeded."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from latbench.predictor.encodings import proxies
from latbench.predictor.encodings.zcp import NAMES, compute_zcp
from latbench.spaces.builders import initialise

ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
ALL_3X3 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
ALL_1X1 = "|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|nor_conv_1x1~0|nor_conv_1x1~1|nor_conv_1x1~2|"
SMALL = {"resolution": 8, "batch_size": 4}


def tiny_net(width: int, depth: int, seed: int = 0) -> nn.Module:
    layers: list[nn.Module] = []
    c = 3
    for _ in range(depth):
        layers += [nn.Conv2d(c, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
        c = width
    net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10))
    initialise(net, torch.Generator().manual_seed(seed))
    return net


def batch(seed: int = 0) -> proxies.Batch:
    return proxies.Batch.make(4, 8, 10, seed)


def test_every_proxy_is_finite_on_a_tiny_net() -> None:
    scores = proxies.score(tiny_net(8, 2), batch())
    assert tuple(scores) == proxies.MODEL_PROXIES
    assert all(math.isfinite(v) for v in scores.values()), scores


def test_a_wider_and_deeper_net_scores_higher_on_size_driven_proxies() -> None:
    small = proxies.score(tiny_net(4, 1), batch())
    large = proxies.score(tiny_net(16, 3), batch())
    for name in ("synflow", "l2_norm", "snip", "grad_norm"):
        assert large[name] > small[name], name


def test_nb201_cells_order_by_params_flops_and_synflow() -> None:
    table = compute_zcp("nb201", [ALL_1X1, ALL_3X3], **SMALL)
    one, three = table.values
    for name in ("params", "flops", "synflow"):
        i = NAMES.index(name)
        assert three[i] > one[i], name


def test_an_all_none_cell_gets_finite_values() -> None:
    (row,) = compute_zcp("nb201", [ALL_NONE], **SMALL).values
    assert np.all(np.isfinite(row)), dict(zip(NAMES, row))
    assert row[NAMES.index("synflow")] == 0.0


@pytest.mark.slow
def test_the_same_seed_gives_the_same_row_and_another_seed_another_one() -> None:
    first = compute_zcp("nb201", [ALL_3X3], seed=0, **SMALL).values
    again = compute_zcp("nb201", [ALL_3X3], seed=0, **SMALL).values
    other = compute_zcp("nb201", [ALL_3X3], seed=1, **SMALL).values
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first[:, :2], other[:, :2])
    assert not np.allclose(first[:, 2:], other[:, 2:])


def test_degenerate_correlations_stay_finite() -> None:
    identical = np.ones((4, 12))
    zero = np.zeros((4, 12))
    assert math.isfinite(proxies.jacov(identical)) and math.isfinite(proxies.jacov(zero))
    assert math.isfinite(proxies.epe_nas(zero, np.array([0, 0, 1, 1])))
    assert proxies.nwot(np.full((4, 4), 3.0)) == 0.0
    assert proxies.nwot(np.eye(4) * 2) == pytest.approx(4 * math.log(2))
