"""Architectures as integer genomes, so one search algorithm serves every space.

A space says how many choices each gene has (``SearchSpace.genes``) and maps strings to genomes and back, so the
search never parses strings itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from latbench.spaces import SearchSpace, get_space


@dataclass(frozen=True)
class Genome:
    """The genes of one space: how many choices each has, and the string codec."""

    space: str

    @property
    def _space(self) -> SearchSpace:
        return get_space(self.space)

    @property
    def choices(self) -> np.ndarray:
        """The number of choices of each gene, int64 (genes,)."""
        return np.array(self._space.genes, dtype=np.int64)

    @property
    def genes(self) -> int:
        return len(self._space.genes)

    def decode(self, genomes: np.ndarray) -> list[str]:
        return self._space.from_genes_many(np.atleast_2d(genomes))

    def encode(self, archs: Sequence[str]) -> np.ndarray:
        return self._space.to_genes_many(archs)

    def random(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.integers(0, self.choices, size=(n, self.genes))

    def mutate(self, parents: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One gene of each parent changed to a different choice: the smallest step the space allows.

        Only genes with more than one choice can change; a space whose genes all have one choice has one member.
        """
        children = parents.copy()
        choices = self.choices
        mutable = np.flatnonzero(choices > 1)
        if not len(mutable):
            return children
        rows = np.arange(len(parents))
        where = mutable[rng.integers(0, len(mutable), size=len(parents))]
        shift = rng.integers(1, choices[where])
        children[rows, where] = (children[rows, where] + shift) % choices[where]
        return children


def genome_of(space: str) -> Genome:
    return Genome(get_space(space).name)
