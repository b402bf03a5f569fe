"""The NAS-Bench-201 CIFAR network (xautodl's ``TinyNetwork`` with ``InferCell``), module for module.

Module names follow xautodl's (``stem``, ``cells``, ``layers``, ``conv_a``, ``lastact``, ``classifier``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from latbench.spaces.nb201 import CELLS_PER_STAGE, EDGES, OPS, STEM_CHANNELS, parse_arch


class ReLUConvBN(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out, affine=True, track_running_stats=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Zero(nn.Module):
    """The ``none`` edge: built and run like every other op, so the network matches the benchmark's."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


class ResNetBasicblock(nn.Module):
    """The reduction between stages: ``downsample(x) + conv_b(conv_a(x))`` with stride 2."""

    def __init__(self, inplanes: int, planes: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(inplanes, planes, 3, 2, 1)
        self.conv_b = ReLUConvBN(planes, planes, 3, 1, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(inplanes, planes, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


OP_FACTORIES: dict[str, Callable[[int], nn.Module]] = {
    "none": lambda c: Zero(),
    "skip_connect": lambda c: nn.Identity(),
    "nor_conv_1x1": lambda c: ReLUConvBN(c, c, 1, 1, 0),
    "nor_conv_3x3": lambda c: ReLUConvBN(c, c, 3, 1, 1),
    "avg_pool_3x3": lambda c: nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
}
"""Each cell operation at ``c`` channels, stride 1, as NAS-Bench-201 builds it."""


class InferCell(nn.Module):
    """Node ``i`` is the sum of the ops on its incoming edges; the cell returns node 3."""

    def __init__(self, op_ids: tuple[int, ...], c: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(OP_FACTORIES[OPS[o]](c) for o in op_ids)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for target in range(1, 4):
            incoming = [op(nodes[src]) for op, (t, src) in zip(self.layers, EDGES) if t == target]
            nodes.append(sum(incoming[1:], incoming[0]))
        return nodes[-1]


class TinyNetwork(nn.Module):
    def __init__(self, op_ids: tuple[int, ...], classes: int) -> None:
        super().__init__()
        c = STEM_CHANNELS
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        cells: list[nn.Module] = []
        for stage in range(3):
            if stage:
                cells.append(ResNetBasicblock(c, 2 * c))
                c *= 2
            cells += [InferCell(op_ids, c) for _ in range(CELLS_PER_STAGE)]
        self.cells = nn.ModuleList(cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU())
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        x = self.global_pooling(self.lastact(x))
        return self.classifier(torch.flatten(x, 1))


def build(arch: str, classes: int) -> nn.Module:
    return TinyNetwork(parse_arch(arch), classes)
