"""The toy space's PyTorch network: stem, the three chosen layers, pooling and a classifier."""

from __future__ import annotations

from torch import nn

from latbench_toy import CHANNELS, KERNEL


def build(arch: str, classes: int) -> nn.Module:
    layers: list[nn.Module] = [nn.Conv2d(3, CHANNELS, 3, padding=1, bias=False), nn.BatchNorm2d(CHANNELS)]
    for op in arch.split("-"):
        if op in KERNEL:
            k = KERNEL[op]
            layers += [
                nn.Conv2d(CHANNELS, CHANNELS, k, padding=k // 2, bias=False),
                nn.BatchNorm2d(CHANNELS),
                nn.ReLU(),
            ]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(CHANNELS, classes))
