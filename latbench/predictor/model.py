"""The NASFLAT network: op-wise hardware embedding, two passes of ensemble graph layers, a regression head.

``score = head([mean_i h_i || s])`` where ``h`` comes from one op-embedding pass then ``layers`` ensemble layers
of ``width``, and ``s`` are optional supplementary encodings (cost features, zero-cost proxies, arch2vec).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from latbench.predictor.layers import EnsembleLayer, OpHardwareEmbedding, RegressionHead, flow_matrix


@dataclass(frozen=True)
class NasflatConfig:
    """The network's shape; saved with the weights so a file rebuilds its own model."""

    vocabulary_size: int
    devices: int
    supplementary: int = 0
    op_dim: int = 40
    device_dim: int = 8
    width: int = 64
    layers: int = 3
    head_hidden: int = 200
    head_depth: int = 3
    dropout: float = 0.1

    def as_dict(self) -> dict[str, int | float]:
        return asdict(self)


class Nasflat(nn.Module):
    def __init__(self, config: NasflatConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = OpHardwareEmbedding(config.vocabulary_size, config.devices, config.op_dim, config.device_dim)
        width = self.embed.out_features
        self.op_pass = EnsembleLayer(width, width)
        self.graph = nn.ModuleList()
        for _ in range(config.layers):
            self.graph.append(EnsembleLayer(width, config.width))
            width = config.width
        self.head = RegressionHead(width + config.supplementary, config.head_hidden, config.head_depth, config.dropout)

    def forward(
        self, ops: torch.Tensor, adjacency: torch.Tensor, device: torch.Tensor, supplementary: torch.Tensor | None
    ) -> torch.Tensor:
        """Scores (B,) of ``ops`` (B, N) on ``device`` (B,) rows of the hardware embedding."""
        flow = flow_matrix(adjacency)
        x = self.embed(ops, device)
        x = self.op_pass(x, flow)
        for layer in self.graph:
            x = layer(x, flow)
        pooled = x.mean(dim=1)
        if supplementary is not None:
            pooled = torch.cat([pooled, supplementary], dim=-1)
        return self.head(pooled)

    def add_device(self, copy_from: int) -> int:
        return self.embed.add_device(copy_from)
