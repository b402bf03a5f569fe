"""OFA's MobileNetV3 subnet (``ofa_mbv3_d234_e346_k357_w1.2``), built from the tables of ``latbench.spaces.ofa``.

Layer for layer what OFA's ``get_active_subnet`` returns, in eval form: the classifier's dropout is left out
because it is the identity at inference, and global pooling is one ``AdaptiveAvgPool2d`` (ONNX
``GlobalAveragePool``) where OFA takes two means. The hard activations are written as OFA writes them
(``relu6(x + 3) / 6``), so exports hold the same Add/Clip/Div/Mul operators as an exported OFA model.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from latbench.spaces.ofa import (
    FINAL_EXPAND_CHANNELS,
    FIRST_BLOCK_CHANNELS,
    LAST_CHANNELS,
    SLOT_TABLE,
    STAGES,
    STEM_CHANNELS,
    mid_channels,
    parse_arch,
    se_channels,
)


class HSigmoid(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(x + 3.0) / 6.0


class HSwish(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * F.relu6(x + 3.0) / 6.0


def activation(name: str) -> nn.Module:
    return nn.ReLU() if name == "relu" else HSwish()


def conv_bn(
    c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, act: str | None = None
) -> nn.Sequential:
    """Bias-free conv with OFA's same padding, BatchNorm and an optional activation: OFA's ``ConvLayer``."""
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    if act is not None:
        layers.append(activation(act))
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """OFA's ``SEModule``: pool, 1x1 down to a quarter (rounded to 8) + ReLU, 1x1 back + h_sigmoid, rescale."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        mid = int(se_channels(channels))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(nn.Conv2d(channels, mid, 1), nn.ReLU(), nn.Conv2d(mid, channels, 1), HSigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(self.pool(x))


class MBConv(nn.Module):
    """OFA's ``MBConvLayer`` in a ``ResidualBlock``: 1x1 expand (none at e=1), depthwise kxk, SE, 1x1 project."""

    def __init__(self, c_in: int, c_out: int, kernel: int, expand: int, stride: int, act: str, se: bool) -> None:
        super().__init__()
        mid = int(mid_channels(c_in, expand))
        self.expand = conv_bn(c_in, mid, 1, act=act) if expand != 1 else nn.Identity()
        self.depthwise = conv_bn(mid, mid, kernel, stride=stride, groups=mid, act=act)
        self.se = SqueezeExcite(mid) if se else nn.Identity()
        self.project = conv_bn(mid, c_out, 1)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.se(self.depthwise(self.expand(x))))
        return x + y if self.residual else y


class OFAMobileNetV3(nn.Module):
    def __init__(self, arch: str, classes: int) -> None:
        super().__init__()
        a = parse_arch(arch)
        self.stem = conv_bn(3, STEM_CHANNELS, 3, stride=2, act="h_swish")
        first = MBConv(STEM_CHANNELS, FIRST_BLOCK_CHANNELS, 3, 1, 1, "relu", se=False)
        searched = (
            MBConv(
                slot.c_in,
                slot.c_out,
                a.ks[j],
                a.e[j],
                slot.stride,
                STAGES[slot.stage].activation,
                STAGES[slot.stage].se,
            )
            for j, slot in enumerate(SLOT_TABLE)
            if a.active(j)
        )
        self.blocks = nn.Sequential(first, *searched)
        self.final_expand = conv_bn(STAGES[-1].width, FINAL_EXPAND_CHANNELS, 1, act="h_swish")
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_mix = nn.Sequential(nn.Conv2d(FINAL_EXPAND_CHANNELS, LAST_CHANNELS, 1, bias=False), HSwish())
        self.classifier = nn.Linear(LAST_CHANNELS, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.feature_mix(self.pool(self.final_expand(self.blocks(self.stem(x)))))
        return self.classifier(torch.flatten(x, 1))


def build(arch: str, classes: int) -> nn.Module:
    return OFAMobileNetV3(arch, classes)
