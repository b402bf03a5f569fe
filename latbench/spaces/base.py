"""What every search space offers: canonical strings, seeded sampling, genes, graph encodings, costs and a builder.

``SearchSpace`` is the whole contract between a space and the rest of latbench: datasets, the predictor, the
search and the build side read a space only through it, so a plugin space (entry-point group ``latbench.spaces``)
works everywhere a built-in one does. docs/spaces.md ("Writing a space plugin") walks through it.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

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
    """A NAS search space: its members are canonical architecture strings.

    A subclass sets the class attributes and the abstract methods; everything else has a generic default that
    a space may override for speed (the ``*_genes`` methods work on whole genome matrices at once).
    """

    name: str
    vocabulary: tuple[str, ...]
    default_resolution: int
    default_classes: int
    builder: str | None = None
    """``"module:function"`` of the PyTorch builder, ``build(arch, classes) -> nn.Module``; imported on the build
    side only, so a space's own module never needs torch."""
    builder_version: str = ""
    """Bump it when ``builder`` changes the network it builds for an architecture: it joins the artifact cache's
    key (``ArtifactKey.digest``), so a model file the old builder made is never reused for the new one. Empty
    (the built-in spaces) leaves the key to latbench's own ``BUILDER_VERSION``."""

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
        """The graph encoding of ``arch``; every architecture of a space has the same node count."""

    @abc.abstractmethod
    def costs(self, arch: str, resolution: int | None = None, classes: int | None = None) -> Costs:
        """MACs and parameters of the benchmark network built for ``arch``."""

    @abc.abstractmethod
    def validate_resolution(self, resolution: int) -> None:
        """Raise ``LatbenchError`` for an input resolution the network cannot take."""

    @property
    @abc.abstractmethod
    def genes(self) -> tuple[int, ...]:
        """The number of choices of each gene, in order: a genome is a tuple with gene ``i`` in ``range(genes[i])``."""

    @abc.abstractmethod
    def to_genes(self, arch: str) -> tuple[int, ...]:
        """The genome of ``arch`` (validating it); ``from_genes(to_genes(a)) == canonical(a)``."""

    @abc.abstractmethod
    def from_genes(self, genes: Sequence[int]) -> str:
        """The canonical string of a genome."""

    def is_degenerate(self, arch: str) -> bool:
        """Whether the output of ``arch`` cannot depend on its input (an NB201 cell whose ``none`` edges cut every
        input-output path): such a network trains to chance accuracy, so a search never proposes it. ``False``
        by default; a space that overrides it excludes the same architectures in ``sample(connected_only=True)``."""
        return False

    def effective_costs(self, arch: str, resolution: int | None = None, classes: int | None = None) -> Costs:
        """``costs`` of the layers that can change the output, so that a search maximising parameters or FLOPs
        does not reward a branch whose result is thrown away. ``costs`` by default (every layer counts); the
        latency side keeps reading ``costs``, since dead layers are still built and run."""
        return self.costs(arch, resolution, classes)

    @property
    def title(self) -> str:
        """The name people write in prose and messages (``NB201``); the registered name unless a space says."""
        return self.name

    def official_index(self, arch: str) -> int | None:
        """The benchmark's own index of ``arch`` where the space has one (NB201), else ``None``."""
        return None

    def details(self, arch: str) -> dict[str, object]:
        """Facts of ``arch`` particular to the space, which ``latbench spaces show`` prints: its official index."""
        index = self.official_index(arch)
        return {} if index is None else {"arch_index": index}

    def archs(self) -> list[str] | None:
        """Every member in official-index order, for a space small enough to list (NB201); else ``None``.

        Where this is a list, datasets store architectures as indices into it and list them in its order.
        """
        return None

    def input_resolution(self, arch: str) -> int:
        """The input resolution the network of ``arch`` is built for; spaces with a resolution gene override it."""
        return self.default_resolution

    def canonical_many(self, archs: Sequence[str]) -> list[str]:
        return [self.canonical(a) for a in archs]

    def to_genes_many(self, archs: Sequence[str]) -> np.ndarray:
        """Genomes of ``archs`` as an int64 (n, genes) matrix."""
        rows = [self.to_genes(a) for a in archs]
        return np.array(rows, dtype=np.int64).reshape(len(rows), len(self.genes))

    def from_genes_many(self, genomes: np.ndarray) -> list[str]:
        return [self.from_genes([int(g) for g in row]) for row in np.atleast_2d(genomes)]

    def encode_batch(self, archs: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(ops int64 (n, nodes) vocabulary ids, adjacency float32 (nodes, nodes) shared by every architecture)."""
        graphs = [self.encode(a) for a in archs] or [self.encode(self.sample(1)[0])]
        adjacency = graphs[0].adjacency
        if any(not np.array_equal(g.adjacency, adjacency) for g in graphs[1:]):
            raise LatbenchError(f"space {self.name!r}: architectures differ in adjacency, so they cannot share a batch")
        ops = np.array([g.ops for g in graphs[: len(archs)]], dtype=np.int64).reshape(len(archs), len(graphs[0].ops))
        return ops, adjacency.astype(np.float32)

    def encode_genes(self, genomes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``encode_batch`` of the genomes' architectures."""
        return self.encode_batch(self.from_genes_many(genomes))

    def cost_feature_names(self) -> list[str]:
        """Names of the ``cost_features`` columns; a pretrained predictor records them and checks them on load."""
        return ["log_macs", "log_params"]

    def cost_features(self, archs: Sequence[str]) -> np.ndarray:
        """What a roofline model of latency reads, float64 (n, len(cost_feature_names())): by default log MACs
        and log parameters from ``costs``."""
        rows = []
        for a in archs:
            c = self.costs(a, self.input_resolution(a))
            rows.append((np.log(max(c.macs, 1.0)), np.log(max(c.params, 1.0))))
        return np.array(rows, dtype=np.float64).reshape(len(rows), 2)

    def cost_features_genes(self, genomes: np.ndarray) -> np.ndarray:
        """``cost_features`` of the genomes' architectures."""
        return self.cost_features(self.from_genes_many(genomes))


@dataclass(frozen=True)
class PositionCosts:
    """Cost features that are sums over positions: ``base + sum_p table[p, genome[p]]``, some columns logged.

    A space whose genes are independent positions (NB201 edges, FBNet layers) builds the table once from its
    analytic costs, so featurising thousands of architectures takes milliseconds.
    """

    table: np.ndarray
    """(positions, choices, k) contribution of each choice at each position."""
    base: np.ndarray
    """(k,) the part every architecture shares (stem, head)."""
    logged: np.ndarray
    """Indices of the columns reported as ``log(max(value, 1))``."""

    def features(self, genomes: np.ndarray) -> np.ndarray:
        positions = np.arange(genomes.shape[1])
        raw = self.base + self.table[positions, genomes].sum(axis=1)
        raw[:, self.logged] = np.log(np.maximum(raw[:, self.logged], 1.0))
        return raw


class OpPerPosition(SearchSpace):
    """A space whose architectures share one graph: gene ``i`` is the operation at position ``i``, with an input
    node before the positions and an output node after them, so ``encode_genes`` needs no strings at all.

    ``example`` is any member: its graph gives the shared adjacency.
    """

    example: str

    def encode_genes(self, genomes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = genomes.shape[0]
        last = np.full((n, 1), len(self.vocabulary) - 1, np.int64)
        ops = np.concatenate([np.zeros((n, 1), np.int64), genomes + 1, last], axis=1)
        return ops, self._adjacency

    @cached_property
    def _adjacency(self) -> np.ndarray:
        return self.encode(self.example).adjacency.astype(np.float32)

    @property
    def _position_costs(self) -> PositionCosts:
        """Each position's cost contribution per operation; a space of this shape defines it (cached)."""
        raise NotImplementedError

    def cost_features(self, archs: Sequence[str]) -> np.ndarray:
        return self.cost_features_genes(self.to_genes_many(archs))

    def cost_features_genes(self, genomes: np.ndarray) -> np.ndarray:
        """A sum over positions of the table's entries: milliseconds for all 15,625 NB201 cells."""
        return self._position_costs.features(genomes)


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
