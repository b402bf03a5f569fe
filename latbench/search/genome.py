"""Architectures as integer genomes, so one search algorithm serves every space.

NB201 is 6 edges x 5 operations, FBNet 22 layers x 9 blocks; both spaces already map strings to operation ids
and back, so a genome is that id tuple and the search never parses strings itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from latbench.errors import UnknownSpace
from latbench.spaces import fbnet, get_space, nb201


@dataclass(frozen=True)
class Genome:
    """The genes of one space: how many, how many choices each, and the string codec."""

    space: str
    genes: int
    choices: int
    decode_ids: Callable[[tuple[int, ...]], str]
    encode_arch: Callable[[str], tuple[int, ...]]

    def decode(self, genomes: np.ndarray) -> list[str]:
        return [self.decode_ids(tuple(int(g) for g in row)) for row in np.atleast_2d(genomes)]

    def encode(self, archs: Sequence[str]) -> np.ndarray:
        return np.array([self.encode_arch(a) for a in archs], dtype=np.int64).reshape(len(archs), self.genes)

    def random(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.integers(0, self.choices, size=(n, self.genes))

    def mutate(self, parents: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One gene of each parent changed to a different choice: the smallest step the space allows."""
        children = parents.copy()
        rows = np.arange(len(parents))
        where = rng.integers(0, self.genes, size=len(parents))
        shift = rng.integers(1, self.choices, size=len(parents))
        children[rows, where] = (children[rows, where] + shift) % self.choices
        return children


def genome_of(space: str) -> Genome:
    name = get_space(space).name
    if name == "nb201":
        return Genome("nb201", len(nb201.EDGES), len(nb201.OPS), nb201.format_arch, nb201.parse_arch)
    if name == "fbnet":
        return Genome("fbnet", fbnet.NUM_LAYERS, len(fbnet.BLOCKS), fbnet.format_arch, fbnet.parse_arch)
    raise UnknownSpace(f"no search genome for space {space!r}")
