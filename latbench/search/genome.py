"""Architectures as integer genomes, so one search algorithm serves every space.

A space says how many choices each gene has (``SearchSpace.genes``) and maps strings to genomes and back, so the
search never parses strings itself. It also says which members are degenerate (``SearchSpace.is_degenerate``:
an output that ignores the input): random draws and mutations never yield those, so no search method proposes,
rates or confirms them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from latbench.errors import LatbenchError
from latbench.spaces import SearchSpace, get_space

MAX_REDRAWS = 100
"""Draws (or mutations) in a row that may all come out degenerate before a space is deemed to have no other
members (random) or a parent no other neighbours (mutation)."""


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

    def viable(self, genomes: np.ndarray) -> np.ndarray:
        """Bool (n,): which genomes the space does not call degenerate."""
        space = self._space
        return np.array([not space.is_degenerate(a) for a in self.decode(genomes)], dtype=bool).reshape(-1)

    def random(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` genomes drawn uniformly from the space's members that are not degenerate."""
        kept = np.empty((0, self.genes), dtype=np.int64)
        for _ in range(MAX_REDRAWS):
            if len(kept) >= n:
                break
            drawn = rng.integers(0, self.choices, size=(n - len(kept), self.genes))
            kept = np.concatenate([kept, drawn[self.viable(drawn)]])
        if len(kept) < n:
            raise LatbenchError(f"search space {self.space!r} calls every architecture drawn degenerate")
        return kept

    def mutate(self, parents: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One gene of each parent changed to a different choice, the smallest step the space allows, redrawn
        until the child is not degenerate (a parent with no such neighbour is returned unchanged).

        Only genes with more than one choice can change; a space whose genes all have one choice has one member.
        """
        children = self._step(parents, rng)
        for _ in range(MAX_REDRAWS):
            bad = np.flatnonzero(~self.viable(children))
            if not len(bad):
                return children
            children[bad] = self._step(parents[bad], rng)
        bad = np.flatnonzero(~self.viable(children))
        children[bad] = parents[bad]
        return children

    def _step(self, parents: np.ndarray, rng: np.random.Generator) -> np.ndarray:
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
