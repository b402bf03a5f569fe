"""The NASFLAT layers and loss: shapes, gradients, determinism, and the hinge loss on pairs worked by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latbench.predictor.features import codes, cost_features, graph_batch
from latbench.predictor.layers import (
    DenseGraphFlow,
    EnsembleLayer,
    GraphAttention,
    OpHardwareEmbedding,
    RegressionHead,
    flow_matrix,
)
from latbench.predictor.loss import minmax, pairwise_hinge
from latbench.predictor.model import Nasflat, NasflatConfig
from latbench.spaces import get_space


def _batch(space: str, n: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    batch = graph_batch(space, codes(space, get_space(space).sample(n, seed=3)))
    return torch.from_numpy(batch.ops), torch.from_numpy(batch.adjacency)


def test_flow_matrix_averages_each_nodes_predecessors() -> None:
    adjacency = torch.tensor([[0, 1, 1], [0, 0, 1], [0, 0, 0]], dtype=torch.float32)
    flow = flow_matrix(adjacency)
    assert torch.equal(flow, torch.tensor([[0, 0, 0], [1, 0, 0], [0.5, 0.5, 0]]))


@pytest.mark.parametrize("layer_class", [DenseGraphFlow, GraphAttention, EnsembleLayer])
def test_graph_layers_keep_nodes_and_pass_gradients(layer_class: type) -> None:
    _, adjacency = _batch("nb201")
    x = torch.randn(4, 8, 12, requires_grad=True)
    layer = layer_class(12, 16)
    y = layer(x, flow_matrix(adjacency))
    assert y.shape == (4, 8, 16)
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in layer.parameters())


def test_flow_layer_reads_only_predecessors() -> None:
    torch.manual_seed(0)
    layer = DenseGraphFlow(3, 4)
    chain = torch.tensor([[0, 1, 0], [0, 0, 1], [0, 0, 0]], dtype=torch.float32)
    x = torch.randn(1, 3, 3)
    changed = x.clone()
    changed[0, 2] += 1.0
    a, b = layer(x, flow_matrix(chain)), layer(changed, flow_matrix(chain))
    assert torch.allclose(a[0, :2], b[0, :2])


def test_hardware_embedding_joins_the_device_to_every_node_and_grows_by_copy() -> None:
    ops, _ = _batch("fbnet", 2)
    embed = OpHardwareEmbedding(len(get_space("fbnet").vocabulary), devices=3, op_dim=40, device_dim=8)
    out = embed(ops, torch.tensor([0, 2]))
    assert out.shape == (2, 24, 48)
    assert torch.equal(out[1, 0, 40:], out[1, 23, 40:])
    assert torch.equal(out[1, 5, 40:], embed.devices.weight[2])
    row = embed.add_device(copy_from=1)
    assert row == 3 and torch.equal(embed.devices.weight[3], embed.devices.weight[1])


def test_nasflat_scores_one_value_per_arch_with_supplementary_inputs() -> None:
    for space in ("nb201", "fbnet"):
        ops, adjacency = _batch(space)
        supplementary = torch.from_numpy(cost_features(space, ops[:, 1:-1].numpy() - 1).astype(np.float32))
        config = NasflatConfig(len(get_space(space).vocabulary), devices=2, supplementary=supplementary.shape[1])
        model = Nasflat(config)
        scores = model(ops, adjacency, torch.zeros(len(ops), dtype=torch.int64), supplementary)
        assert scores.shape == (len(ops),)
        scores.sum().backward()
        assert model.embed.devices.weight.grad is not None


def test_same_seed_same_model_and_scores() -> None:
    ops, adjacency = _batch("nb201")
    device = torch.zeros(len(ops), dtype=torch.int64)

    def build() -> torch.Tensor:
        torch.manual_seed(7)
        model = Nasflat(NasflatConfig(7, devices=1, width=16)).eval()
        return model(ops, adjacency, device, None)

    assert torch.equal(build(), build())


def test_regression_head_depth() -> None:
    head = RegressionHead(10, hidden=20, depth=3)
    assert sum(isinstance(m, torch.nn.Linear) for m in head.mlp) == 4
    assert head(torch.randn(5, 10)).shape == (5,)


def test_hinge_loss_on_known_pairs() -> None:
    targets = torch.tensor([0.0, 1.0])
    assert pairwise_hinge(torch.tensor([0.0, 0.5]), targets).item() == 0.0
    assert pairwise_hinge(torch.tensor([0.0, 0.05]), targets).item() == pytest.approx(0.05)
    assert pairwise_hinge(torch.tensor([0.3, 0.0]), targets).item() == pytest.approx(0.4)
    three = pairwise_hinge(torch.tensor([0.0, 0.0, 0.0]), torch.tensor([0.0, 0.5, 1.0]))
    assert three.item() == pytest.approx(0.1)
    assert pairwise_hinge(torch.tensor([1.0, 2.0]), torch.tensor([0.5, 0.5])).item() == 0.0


def test_minmax_scales_each_device_to_unit_range() -> None:
    assert np.allclose(minmax(np.array([2.0, 4.0, 3.0])), [0.0, 1.0, 0.5])
    assert np.allclose(minmax(np.array([5.0, 5.0])), [0.0, 0.0])
