"""What every search space offers: canonical strings, seeded sampling, graph encodings and analytic costs."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from latbench.errors import LatbenchError


@dataclass(frozen=True)
class ArchGraph:
    """An architecture as a DAG with one operation per node, the form graph predictors read.

    ``ops[i]`` indexes ``vocabulary``; ``adjacency[i, j] == 1`` means node ``i`` feeds node ``j``. Node 0 is the
    input and the last node the output, so every encoding of a space has the same node count.
    """

    ops: np.ndarray
    adjacency: np.ndarray
    vocabulary: tuple[str, ...]

    @property
    def num_nodes(self) -> int:
        return int(self.ops.shape[0])

    def one_hot(self) -> np.ndarray:
        """Node features as a (nodes, vocabulary) float32 one-hot matrix."""
        out = np.zeros((self.num_nodes, len(self.vocabulary)), dtype=np.float32)
        out[np.arange(self.num_nodes), self.ops] = 1.0
        return out


@dataclass(frozen=True)
class Costs:
    """Analytic cost of one network for one image: multiply-accumulates of conv and linear layers, parameters."""

    macs: int
    params: int

    @property
    def mflops(self) -> float:
        """MACs in millions, the unit NAS-Bench-201 and HW-NAS-Bench call "FLOPs"."""
        return self.macs / 1e6


class SearchSpace(abc.ABC):
    """A NAS search space: its members are canonical architecture strings."""

    name: str
    vocabulary: tuple[str, ...]
    default_resolution: int
    default_classes: int

    @abc.abstractmethod
    def canonical(self, arch: str) -> str:
        """Validate ``arch`` and return its canonical string; raise ``InvalidArchitecture`` otherwise."""

    @abc.abstractmethod
    def sample(self, n: int, seed: int = 0, connected_only: bool = False) -> list[str]:
        """``n`` distinct architectures drawn uniformly, the same for the same seed on every machine.

        ``connected_only`` excludes architectures whose output does not depend on their input.
        """

    @abc.abstractmethod
    def encode(self, arch: str) -> ArchGraph:
        """The graph encoding of ``arch``."""

    @abc.abstractmethod
    def costs(self, arch: str, resolution: int | None = None, classes: int | None = None) -> Costs:
        """MACs and parameters of the benchmark network built for ``arch``."""

    @abc.abstractmethod
    def validate_resolution(self, resolution: int) -> None:
        """Raise ``LatbenchError`` for an input resolution the network cannot take."""

    def official_index(self, arch: str) -> int | None:
        """The benchmark's own index of ``arch`` where the space has one (NB201), else ``None``."""
        return None

    def canonical_many(self, archs: Sequence[str]) -> list[str]:
        return [self.canonical(a) for a in archs]


def check_sample_size(n: int, available: int, what: str) -> None:
    if n < 0:
        raise LatbenchError(f"cannot sample a negative number of architectures ({n})")
    if n > available:
        raise LatbenchError(f"cannot sample {n} distinct architectures: {what} has only {available}")


def conv_costs(c_in: int, c_out: int, kernel: int, out_hw: int, groups: int = 1, bn: bool = True) -> Costs:
    """A bias-free Conv2d (optionally followed by BatchNorm, whose weight and bias are parameters)."""
    weights = c_in // groups * c_out * kernel * kernel
    return Costs(macs=weights * out_hw * out_hw, params=weights + (2 * c_out if bn else 0))


def linear_costs(c_in: int, c_out: int) -> Costs:
    return Costs(macs=c_in * c_out, params=c_in * c_out + c_out)


def total(parts: Sequence[Costs]) -> Costs:
    return Costs(macs=sum(p.macs for p in parts), params=sum(p.params for p in parts))
