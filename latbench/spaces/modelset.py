"""The model set: users' own model files standing where a search space's architectures stand.

A campaign, a results file or a dataset of model files names its ``space`` ``model`` and each member by the
model's name (its file name, made unique). Nothing can be sampled, encoded or built from a name, so those ask
for a real search space; what results and datasets need (a canonical member, no official index, first-seen
order) works as for any space, which is why the collector and the datasets take a model set without branching
on it. ``get_space("model")`` finds it; it is not a registered space, so ``latbench spaces list`` and sampling
never offer it.
"""

from __future__ import annotations

from collections.abc import Sequence

from latbench.errors import InvalidArchitecture, LatbenchError
from latbench.protocol import MODEL_SET
from latbench.spaces.base import ArchGraph, Costs, SearchSpace

MAX_NAME_CHARS = 512
"""The longest model name: what the collector stores for an architecture."""


class ModelSet(SearchSpace):
    """Members are model names; everything that needs an architecture's structure is refused with one line."""

    name = MODEL_SET
    vocabulary = ()
    default_resolution = 0
    default_classes = 0

    @property
    def title(self) -> str:
        return "model files"

    def canonical(self, arch: str) -> str:
        if not isinstance(arch, str) or not arch.strip() or len(arch) > MAX_NAME_CHARS or arch != arch.strip():
            raise InvalidArchitecture(
                f"{arch!r} is not a model name: 1 to {MAX_NAME_CHARS} characters, no surrounding spaces"
            )
        return arch

    def _structureless(self, what: str) -> LatbenchError:
        return LatbenchError(f"model files have no {what}: this needs a search space's architectures")

    def sample(self, n: int, seed: int = 0, connected_only: bool = False) -> list[str]:
        raise self._structureless("sampler; give the model files themselves")

    def encode(self, arch: str) -> ArchGraph:
        raise self._structureless("graph encoding")

    def costs(self, arch: str, resolution: int | None = None, classes: int | None = None) -> Costs:
        raise self._structureless("cost model")

    def validate_resolution(self, resolution: int) -> None:
        raise self._structureless("resolution; give input shapes instead")

    @property
    def genes(self) -> tuple[int, ...]:
        raise self._structureless("genes")

    def to_genes(self, arch: str) -> tuple[int, ...]:
        raise self._structureless("genes")

    def from_genes(self, genes: Sequence[int]) -> str:
        raise self._structureless("genes")


MODELS = ModelSet()
