"""A tiny third-party search space for the plugin tests: a chain of three layers, the last without ``skip``.

Its genes have different choice counts (3, 3, 2), and it does not list its members, so the generic paths
(genome storage, default cost features, batch encoding) are the ones it exercises.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from latbench.errors import InvalidArchitecture, LatbenchError
from latbench.spaces.base import ArchGraph, Costs, SearchSpace, check_sample_size, conv_costs, linear_costs, total

LAYER_OPS: tuple[tuple[str, ...], ...] = (("conv3x3", "conv1x1", "skip"),) * 2 + (("conv3x3", "conv1x1"),)
VOCABULARY = ("input", "conv3x3", "conv1x1", "skip", "output")
CHANNELS = 8
KERNEL = {"conv3x3": 3, "conv1x1": 1}


def parse(arch: str) -> tuple[int, ...]:
    parts = arch.split("-") if isinstance(arch, str) else []
    if len(parts) != len(LAYER_OPS) or any(p not in ops for p, ops in zip(parts, LAYER_OPS)):
        raise InvalidArchitecture(f"{arch!r} is not a toy architecture: 3 ops joined by '-', the last not 'skip'")
    return tuple(ops.index(p) for p, ops in zip(parts, LAYER_OPS))


class Toy(SearchSpace):
    name = "toy"
    vocabulary = VOCABULARY
    default_resolution = 16
    default_classes = 10
    builder = "latbench_toy.build:build"

    @property
    def genes(self) -> tuple[int, ...]:
        return tuple(len(ops) for ops in LAYER_OPS)

    def to_genes(self, arch: str) -> tuple[int, ...]:
        return parse(arch)

    def from_genes(self, genes: Sequence[int]) -> str:
        return "-".join(ops[g] for g, ops in zip(genes, LAYER_OPS))

    def canonical(self, arch: str) -> str:
        return self.from_genes(parse(arch))

    def sample(self, n: int, seed: int = 0, connected_only: bool = False) -> list[str]:
        every = [self.from_genes(g) for g in itertools.product(*(range(c) for c in self.genes))]
        check_sample_size(n, len(every), "toy")
        return [every[i] for i in np.random.default_rng(seed).choice(len(every), size=n, replace=False)]

    def encode(self, arch: str) -> ArchGraph:
        ops = np.array([0, *(VOCABULARY.index(p) for p in self.canonical(arch).split("-")), 4], dtype=np.int64)
        adjacency = np.eye(5, k=1, dtype=np.uint8)
        return ArchGraph(ops=ops, adjacency=adjacency, vocabulary=VOCABULARY)

    def validate_resolution(self, resolution: int) -> None:
        if resolution < 1:
            raise LatbenchError(f"toy needs a positive resolution, got {resolution}")

    def costs(self, arch: str, resolution: int | None = None, classes: int | None = None) -> Costs:
        hw = resolution or self.default_resolution
        self.validate_resolution(hw)
        parts = [conv_costs(3, CHANNELS, 3, hw)]
        parts += [conv_costs(CHANNELS, CHANNELS, KERNEL[p], hw) for p in self.canonical(arch).split("-") if p in KERNEL]
        return total([*parts, linear_costs(CHANNELS, classes or self.default_classes)])
