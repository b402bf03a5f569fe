"""The MLP baselines' network: flattened one-hot ops and supplementary encodings, joined to a device vector.

HELP-style: the device vector is fixed, the device's min-max latencies on 10 reference architectures.
MultiPredict-style: a learnable device embedding (new devices copied from the best-correlated source, as NASFLAT).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from latbench.predictor.layers import RegressionHead, with_copied_row


@dataclass(frozen=True)
class MlpConfig:
    nodes: int
    vocabulary_size: int
    devices: int
    supplementary: int = 0
    device_dim: int = 8
    fixed_devices: bool = False
    hidden: int = 200
    depth: int = 3
    dropout: float = 0.1

    def as_dict(self) -> dict[str, int | float | bool]:
        return asdict(self)


class EncodingMlp(nn.Module):
    """``score = MLP([onehot(ops) || s || e_d])``; ``e_d`` a learnable row, or a fixed vector for HELP."""

    device_vectors: torch.Tensor  # the fixed vectors' buffer, registered when ``config.fixed_devices``

    def __init__(self, config: MlpConfig) -> None:
        super().__init__()
        self.config = config
        if config.fixed_devices:
            self.register_buffer("device_vectors", torch.zeros(config.devices, config.device_dim))
        else:
            self.devices = nn.Embedding(config.devices, config.device_dim)
        inputs = config.nodes * config.vocabulary_size + config.supplementary + config.device_dim
        self.head = RegressionHead(inputs, config.hidden, config.depth, config.dropout)

    def device_vector(self, device: torch.Tensor) -> torch.Tensor:
        return self.device_vectors[device] if self.config.fixed_devices else self.devices(device)

    def forward(
        self, ops: torch.Tensor, adjacency: torch.Tensor, device: torch.Tensor, supplementary: torch.Tensor | None
    ) -> torch.Tensor:
        onehot = nn.functional.one_hot(ops, self.config.vocabulary_size).float().flatten(1)
        parts = [onehot, self.device_vector(device)]
        if supplementary is not None:
            parts.insert(1, supplementary)
        return self.head(torch.cat(parts, dim=-1))

    def add_device(self, copy_from: int, vector: torch.Tensor | None = None) -> int:
        """Append a device: a given fixed vector (HELP), or a copy of row ``copy_from`` of the embedding."""
        if self.config.fixed_devices:
            assert vector is not None
            self.device_vectors = torch.cat([self.device_vectors, vector.view(1, -1)])
            return self.device_vectors.shape[0] - 1
        self.devices = with_copied_row(self.devices, copy_from)
        return self.devices.num_embeddings - 1
