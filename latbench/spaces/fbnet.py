"""FBNet as HW-NAS-Bench sets it up for CIFAR: 22 searchable layers, each one of 9 blocks.

The canonical string joins the 22 block names with ``-``, the form of the public latency tables.
The macro network (channels, strides, head) is ``MACRO`` here; the PyTorch builder reads the same table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from latbench.errors import InvalidArchitecture, LatbenchError
from latbench.spaces.base import (
    ArchGraph,
    Costs,
    OpPerPosition,
    PositionCosts,
    check_sample_size,
    conv_costs,
    linear_costs,
    total,
)

BLOCKS: tuple[str, ...] = (
    "k3_e1",
    "k3_e1_g2",
    "k3_e3",
    "k3_e6",
    "k5_e1",
    "k5_e1_g2",
    "k5_e3",
    "k5_e6",
    "skip",
)
NUM_LAYERS = 22
STEM_CHANNELS = 16
HEAD_CHANNELS = 1504
_STAGE_LAYERS = (1, 4, 4, 4, 4, 4, 1)
_STAGE_CHANNELS = (16, 24, 32, 64, 112, 184, 352)
_STAGE_STRIDES_CIFAR = (1, 1, 2, 2, 1, 2, 1)
_BLOCK_ID = {b: i for i, b in enumerate(BLOCKS)}
EXAMPLE = "-".join(["k3_e6"] * 11 + ["skip"] * 11)


@dataclass(frozen=True)
class Block:
    """A searchable block: inverted residual (kernel, expansion, groups of the 1x1 convs) or skip."""

    kernel: int
    expansion: int
    groups: int

    @property
    def is_skip(self) -> bool:
        return self.kernel == 0

    @staticmethod
    def parse(name: str) -> Block:
        if name == "skip":
            return Block(0, 0, 1)
        parts = name.split("_")
        return Block(int(parts[0][1:]), int(parts[1][1:]), int(parts[2][1:]) if len(parts) == 3 else 1)


@dataclass(frozen=True)
class Layer:
    """One searchable position of the macro network."""

    c_in: int
    c_out: int
    stride: int


def _macro() -> tuple[Layer, ...]:
    layers, c_prev = [], STEM_CHANNELS
    for n, c, s in zip(_STAGE_LAYERS, _STAGE_CHANNELS, _STAGE_STRIDES_CIFAR):
        for i in range(n):
            layers.append(Layer(c_prev, c, s if i == 0 else 1))
            c_prev = c
    return tuple(layers)


MACRO: tuple[Layer, ...] = _macro()


def dw_padding(kernel: int, stride: int) -> int:
    """HW-NAS-Bench's padding rule, chosen so that the output is the input divided by the stride."""
    return math.ceil((kernel - stride) / 2)


def conv_out(hw: int, kernel: int, stride: int, padding: int) -> int:
    return (hw + 2 * padding - kernel) // stride + 1


def parse_arch(arch: str) -> tuple[int, ...]:
    """The 22 block ids of ``arch``; ``InvalidArchitecture`` says what is wrong."""
    if not isinstance(arch, str):
        raise InvalidArchitecture(f"an FBNet architecture is a string, got {type(arch).__name__}")
    hint = f"a valid FBNet architecture is {NUM_LAYERS} blocks joined by '-' (blocks: {', '.join(BLOCKS)})"
    parts = arch.strip().split("-")
    if len(parts) != NUM_LAYERS:
        raise InvalidArchitecture(f"{arch!r} has {len(parts)} layer(s), expected {NUM_LAYERS}; {hint}")
    bad = [(i, p) for i, p in enumerate(parts) if p not in _BLOCK_ID]
    if bad:
        where = ", ".join(f"layer {i}: {p!r}" for i, p in bad[:3])
        raise InvalidArchitecture(f"unknown block(s) in {arch!r} ({where}); {hint}")
    return tuple(_BLOCK_ID[p] for p in parts)


def format_arch(block_ids: tuple[int, ...]) -> str:
    return "-".join(BLOCKS[b] for b in block_ids)


def block_costs(block: Block, layer: Layer, hw: int) -> tuple[Costs, int]:
    """Costs of one block at input size ``hw``, and its output size."""
    if block.is_skip:
        if layer.stride == 1 and layer.c_in == layer.c_out:
            return Costs(0, 0), hw
        out = conv_out(hw, 1, layer.stride, 0)
        return conv_costs(layer.c_in, layer.c_out, 1, out), out
    mid = layer.c_in * block.expansion
    out = conv_out(hw, block.kernel, layer.stride, dw_padding(block.kernel, layer.stride))
    parts = [
        conv_costs(layer.c_in, mid, 1, hw, groups=block.groups),
        conv_costs(mid, mid, block.kernel, out, groups=mid),
        conv_costs(mid, layer.c_out, 1, out, groups=block.groups),
    ]
    return total(parts), out


class FBNet(OpPerPosition):
    """HW-NAS-Bench's FBNet space on CIFAR-100 (22 layers x 9 blocks, 100 classes by default)."""

    example = EXAMPLE

    name = "fbnet"
    vocabulary = ("input", *BLOCKS, "output")
    default_resolution = 32
    default_classes = 100
    builder = "latbench.spaces.builders.fbnet:build"

    def canonical(self, arch: str) -> str:
        return format_arch(parse_arch(arch))

    @property
    def title(self) -> str:
        return "FBNet"

    @property
    def genes(self) -> tuple[int, ...]:
        """One gene per layer, its block."""
        return (len(BLOCKS),) * NUM_LAYERS

    def to_genes(self, arch: str) -> tuple[int, ...]:
        return parse_arch(arch)

    def from_genes(self, genes: Sequence[int]) -> str:
        return format_arch(tuple(genes))

    def sample(self, n: int, seed: int = 0, connected_only: bool = False) -> list[str]:
        """Every FBNet network is connected, so ``connected_only`` changes nothing."""
        check_sample_size(n, len(BLOCKS) ** NUM_LAYERS, "FBNet")
        rng = np.random.default_rng(seed)
        seen: dict[str, None] = {}
        while len(seen) < n:
            for row in rng.integers(0, len(BLOCKS), size=(n - len(seen), NUM_LAYERS)):
                seen.setdefault(format_arch(tuple(int(b) for b in row)), None)
        return list(seen)

    def encode(self, arch: str) -> ArchGraph:
        """24 nodes in a chain: input, the 22 blocks, output."""
        block_ids = parse_arch(arch)
        n = NUM_LAYERS + 2
        ops = np.array([0, *(b + 1 for b in block_ids), len(self.vocabulary) - 1], dtype=np.int64)
        adjacency = np.zeros((n, n), dtype=np.uint8)
        adjacency[np.arange(n - 1), np.arange(1, n)] = 1
        return ArchGraph(ops=ops, adjacency=adjacency, vocabulary=self.vocabulary)

    def validate_resolution(self, resolution: int) -> None:
        if resolution < 8:
            raise LatbenchError(
                f"FBNet needs an input resolution of at least 8 (three stride-2 layers), got {resolution}"
            )

    def costs(self, arch: str, resolution: int | None = None, classes: int | None = None) -> Costs:
        block_ids = parse_arch(arch)
        hw = resolution or self.default_resolution
        self.validate_resolution(hw)
        parts = [conv_costs(3, STEM_CHANNELS, 3, hw)]
        for b, layer in zip(block_ids, MACRO):
            cost, hw = block_costs(Block.parse(BLOCKS[b]), layer, hw)
            parts.append(cost)
        parts += [
            conv_costs(MACRO[-1].c_out, HEAD_CHANNELS, 1, hw),
            linear_costs(HEAD_CHANNELS, classes or self.default_classes),
        ]
        return total(parts)

    def cost_feature_names(self) -> list[str]:
        """Log MACs and parameters, kernel launches, log pointwise and depthwise MACs, log activation traffic,
        and the count of each block."""
        additive = ["log_macs", "log_params", "launches", "log_pointwise_macs", "log_depthwise_macs", "log_activations"]
        return additive + [f"count_{b}" for b in BLOCKS]

    @cached_property
    def _position_costs(self) -> PositionCosts:
        """Each layer's contribution at the default resolution; the stem and head are the constant part."""
        n_blocks = len(BLOCKS)
        table = np.zeros((NUM_LAYERS, n_blocks, 6 + n_blocks))
        hw = self.default_resolution
        for position, layer in enumerate(MACRO):
            out_hw = hw
            for b, name in enumerate(BLOCKS):
                block = Block.parse(name)
                cost, out_hw = block_costs(block, layer, hw)
                launches = depthwise = activations = 0.0
                if block.is_skip:
                    if cost.macs:
                        launches = 1.0
                        activations = hw * hw * layer.c_in + out_hw * out_hw * layer.c_out
                else:
                    mid = layer.c_in * block.expansion
                    launches = 3.0 + (block.groups > 1)
                    depthwise = mid * block.kernel**2 * out_hw * out_hw
                    activations = hw * hw * (layer.c_in + mid) + out_hw * out_hw * (mid + layer.c_out)
                pointwise = cost.macs - depthwise
                table[position, b, :6] = (cost.macs, cost.params, launches, pointwise, depthwise, activations)
                table[position, b, 6 + b] = 1.0
            hw = out_hw
        whole = self.costs(EXAMPLE)
        layers = table[np.arange(NUM_LAYERS), parse_arch(EXAMPLE), :2].sum(axis=0)
        base = np.zeros(6 + n_blocks)
        base[:2] = (whole.macs - layers[0], whole.params - layers[1])
        return PositionCosts(table, base, np.array([0, 1, 3, 4, 5]))
