"""HW-NAS-Bench's FBNet network (``FBNet_Infer``) in its CIFAR setting, built from ``MACRO``."""

from __future__ import annotations

import torch
from torch import nn

from latbench.spaces.fbnet import (
    BLOCKS,
    HEAD_CHANNELS,
    MACRO,
    STEM_CHANNELS,
    Block,
    Layer,
    dw_padding,
    parse_arch,
)


def conv_norm(
    c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0, groups: int = 1, relu: bool = True
) -> nn.Sequential:
    """Bias-free conv, BatchNorm and (optionally) ReLU: HW-NAS-Bench's ``ConvNorm``."""
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class ChannelShuffle(nn.Module):
    """ShuffleNet's shuffle, ``[N, g, C/g, H, W] -> [N, C/g, g, H, W]``, written with ops ONNX exports."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.reshape(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ConvBlock(nn.Module):
    """Inverted residual: grouped 1x1 expand, shuffle, depthwise kxk, grouped 1x1 project; residual on equal shapes."""

    def __init__(self, block: Block, layer: Layer) -> None:
        super().__init__()
        mid = layer.c_in * block.expansion
        g = block.groups
        self.conv1 = conv_norm(layer.c_in, mid, 1, groups=g)
        self.shuffle = ChannelShuffle(g) if g > 1 else nn.Identity()
        pad = dw_padding(block.kernel, layer.stride)
        self.conv2 = conv_norm(mid, mid, block.kernel, stride=layer.stride, padding=pad, groups=mid)
        self.conv3 = conv_norm(mid, layer.c_out, 1, groups=g, relu=False)
        self.residual = layer.c_in == layer.c_out and layer.stride == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv3(self.conv2(self.shuffle(self.conv1(x))))
        return x + y if self.residual else y


def make_block(name: str, layer: Layer) -> nn.Module:
    block = Block.parse(name)
    if not block.is_skip:
        return ConvBlock(block, layer)
    if layer.stride == 1 and layer.c_in == layer.c_out:
        return nn.Identity()
    return conv_norm(layer.c_in, layer.c_out, 1, stride=layer.stride)


class FBNetInfer(nn.Module):
    def __init__(self, block_ids: tuple[int, ...], classes: int) -> None:
        super().__init__()
        self.stem = conv_norm(3, STEM_CHANNELS, 3, padding=1)
        self.cells = nn.Sequential(*(make_block(BLOCKS[b], layer) for b, layer in zip(block_ids, MACRO)))
        self.header = conv_norm(MACRO[-1].c_out, HEAD_CHANNELS, 1)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(HEAD_CHANNELS, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.global_pooling(self.header(self.cells(self.stem(x))))
        return self.classifier(torch.flatten(x, 1))


def build(arch: str, classes: int) -> nn.Module:
    return FBNetInfer(parse_arch(arch), classes)
