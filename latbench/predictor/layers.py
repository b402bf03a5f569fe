"""The NASFLAT layers, each a small module with its equation (dense batches: x (B, N, F), adjacency (N, N)).

``adjacency[i, j] = 1`` means node ``i`` feeds node ``j``; messages flow along edges, so node ``j`` reads
``(A^T X)_j`` normalised by its in-degree (the input node, with none, keeps only its own term).
"""

from __future__ import annotations

import torch
from torch import nn


def flow_matrix(adjacency: torch.Tensor) -> torch.Tensor:
    """``A^T`` with each row divided by the node's in-degree (rows of sources stay zero)."""
    incoming = adjacency.t()
    degree = incoming.sum(dim=1, keepdim=True).clamp(min=1.0)
    return incoming / degree


class DenseGraphFlow(nn.Module):
    """Gated dense graph flow: ``h' = sigmoid(X W_g) * (F X W) + X W_s`` with ``F`` the normalised flow matrix.

    The gate lets each node decide how much of its predecessors' state to take in; the self term keeps its own.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.message = nn.Linear(in_features, out_features, bias=False)
        self.self_loop = nn.Linear(in_features, out_features)
        self.gate = nn.Linear(in_features, out_features)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for layer in (self.message, self.self_loop, self.gate):
            layer.reset_parameters()

    def forward(self, x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.gate(x)) * (flow @ self.message(x)) + self.self_loop(x)


class GraphAttention(nn.Module):
    """Gated graph attention: ``h'_j = sigmoid(x_j W_g) * sum_{i->j or i=j} a_ij x_i W + x_j W_s``.

    ``a_ij = softmax_i(LeakyReLU(v^T[x_j W || x_i W]))`` over node ``j``'s predecessors and itself, so unlike the
    flow layer the weights of incoming operations depend on what they are.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.value = nn.Linear(in_features, out_features, bias=False)
        self.self_loop = nn.Linear(in_features, out_features)
        self.gate = nn.Linear(in_features, out_features)
        self.attend_target = nn.Linear(out_features, 1, bias=False)
        self.attend_source = nn.Linear(out_features, 1, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for layer in (self.value, self.self_loop, self.gate, self.attend_target, self.attend_source):
            layer.reset_parameters()

    def forward(self, x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        v = self.value(x)
        scores = self.attend_target(v) + self.attend_source(v).transpose(1, 2)
        mask = (flow > 0) | torch.eye(flow.shape[0], dtype=torch.bool, device=flow.device)
        scores = nn.functional.leaky_relu(scores, 0.2).masked_fill(~mask, float("-inf"))
        attention = torch.softmax(scores, dim=-1)
        return torch.sigmoid(self.gate(x)) * (attention @ v) + self.self_loop(x)


class EnsembleLayer(nn.Module):
    """NASFLAT's ensemble: the mean of a flow layer and an attention layer, then ReLU: ``relu((DGF + GAT) / 2)``."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.flow = DenseGraphFlow(in_features, out_features)
        self.attention = GraphAttention(in_features, out_features)

    def reset_parameters(self) -> None:
        self.flow.reset_parameters()
        self.attention.reset_parameters()

    def forward(self, x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        return torch.relu((self.flow(x, flow) + self.attention(x, flow)) / 2)


class OpHardwareEmbedding(nn.Module):
    """Operation-wise hardware embedding: node features ``[E_op[o_i] || E_dev[d]]`` for every node ``i``.

    Joining the device vector to each node's op embedding lets the device condition every graph layer, not only
    the regression head; a new device gets a new row (``add_device``), copied from a similar source device.
    """

    def __init__(self, vocabulary_size: int, devices: int, op_dim: int = 40, device_dim: int = 8) -> None:
        super().__init__()
        self.ops = nn.Embedding(vocabulary_size, op_dim)
        self.devices = nn.Embedding(devices, device_dim)
        self.reset_parameters()

    @property
    def out_features(self) -> int:
        return self.ops.embedding_dim + self.devices.embedding_dim

    def reset_parameters(self) -> None:
        self.ops.reset_parameters()
        self.devices.reset_parameters()

    def forward(self, ops: torch.Tensor, device: torch.Tensor) -> torch.Tensor:
        nodes = ops.shape[1]
        hw = self.devices(device).unsqueeze(1).expand(-1, nodes, -1)
        return torch.cat([self.ops(ops), hw], dim=-1)

    def add_device(self, copy_from: int) -> int:
        """Append a device row initialised as a copy of row ``copy_from``; returns the new row's index."""
        self.devices = with_copied_row(self.devices, copy_from)
        return self.devices.num_embeddings - 1


def with_copied_row(embedding: nn.Embedding, copy_from: int) -> nn.Embedding:
    """``embedding`` with one more row, a copy of row ``copy_from``: a new device starts as a known one."""
    old = embedding.weight.data
    grown = nn.Embedding(old.shape[0] + 1, old.shape[1])
    grown.weight.data[:-1] = old
    grown.weight.data[-1] = old[copy_from]
    return grown


class RegressionHead(nn.Module):
    """``depth`` x (Linear, ReLU, Dropout) then Linear to one score: the graph embedding (and any supplementary
    encodings joined to it) to a latency score."""

    def __init__(self, in_features: int, hidden: int = 200, depth: int = 3, dropout: float = 0.1) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)

    def reset_parameters(self) -> None:
        for layer in self.mlp:
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x).squeeze(-1)
