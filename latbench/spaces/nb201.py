"""NAS-Bench-201: 15,625 cells of 6 edges x 5 operations, with the official benchmark index of each.

A cell has nodes 0..3; edge ``j -> i`` (i > j) carries one operation. The canonical string lists the edges
into node 1, 2 and 3 in that order: ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from functools import cached_property
from importlib import resources

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

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
"""(target node, source node) of each edge, in canonical string order."""
NUM_ARCHS = len(OPS) ** len(EDGES)
STEM_CHANNELS = 16
CELLS_PER_STAGE = 5
EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
_OP_ID = {op: i for i, op in enumerate(OPS)}


def format_arch(op_ids: tuple[int, ...]) -> str:
    e = [f"{OPS[o]}~{src}" for o, (_, src) in zip(op_ids, EDGES)]
    return f"|{e[0]}|+|{e[1]}|{e[2]}|+|{e[3]}|{e[4]}|{e[5]}|"


def parse_arch(arch: str) -> tuple[int, ...]:
    """The 6 operation ids of ``arch`` in edge order; ``InvalidArchitecture`` says what is wrong."""
    if not isinstance(arch, str):
        raise InvalidArchitecture(f"an NB201 architecture is a string, got {type(arch).__name__}")
    hint = f"a valid NB201 architecture looks like {EXAMPLE!r} (ops: {', '.join(OPS)})"
    nodes = arch.strip().split("+")
    if len(nodes) != 3:
        raise InvalidArchitecture(f"{arch!r} has {len(nodes)} node group(s) separated by '+', expected 3; {hint}")
    ids: list[int] = []
    for target, node in enumerate(nodes, start=1):
        if not (node.startswith("|") and node.endswith("|")) or len(node) < 2:
            raise InvalidArchitecture(f"node {target} of {arch!r} must be wrapped in '|': got {node!r}; {hint}")
        edges = node[1:-1].split("|")
        if len(edges) != target:
            raise InvalidArchitecture(
                f"node {target} of {arch!r} must have {target} incoming edge(s), got {len(edges)}; {hint}"
            )
        for source, edge in enumerate(edges):
            op, sep, src = edge.partition("~")
            if not sep or src != str(source):
                raise InvalidArchitecture(
                    f"edge {edge!r} into node {target} of {arch!r} must read 'op~{source}'; {hint}"
                )
            if op not in _OP_ID:
                raise InvalidArchitecture(f"unknown operation {op!r} in {arch!r}; {hint}")
            ids.append(_OP_ID[op])
    return tuple(ids)


def _ordinal(op_ids: tuple[int, ...]) -> int:
    value = 0
    for o in op_ids:
        value = value * len(OPS) + o
    return value


def _reaches_output(op_ids: tuple[int, ...]) -> bool:
    reached = {0}
    for (target, source), op in zip(EDGES, op_ids):
        if op != _OP_ID["none"] and source in reached:
            reached.add(target)
    return 3 in reached


def _live(op_ids: tuple[int, ...]) -> tuple[int, ...]:
    """``op_ids`` with ``none`` on every edge off all input-output paths: an edge whose source the input does not
    reach carries a constant, and one whose target does not reach the output is summed into nothing."""
    none = _OP_ID["none"]
    reached = {0}
    for (target, source), op in zip(EDGES, op_ids):
        if op != none and source in reached:
            reached.add(target)
    feeds = {3}
    for (target, source), op in reversed(list(zip(EDGES, op_ids))):
        if op != none and target in feeds:
            feeds.add(source)
    return tuple(op if source in reached and target in feeds else none for (target, source), op in zip(EDGES, op_ids))


class NB201(OpPerPosition):
    """NAS-Bench-201 with the official index (shipped, derived from HELP's ``str_arch2idx``; see NOTICE.md)."""

    example = EXAMPLE

    name = "nb201"
    vocabulary = ("input", *OPS, "output")
    default_resolution = 32
    default_classes = 10
    builder = "latbench.spaces.builders.nb201:build"

    @cached_property
    def _official_index(self) -> np.ndarray:
        with resources.files("latbench.spaces").joinpath("data/nb201_official_index.npy").open("rb") as f:
            return np.load(f).astype(np.int64)

    @cached_property
    def _by_index(self) -> list[str]:
        order = np.empty(NUM_ARCHS, dtype=np.int64)
        order[self._official_index] = np.arange(NUM_ARCHS)
        lex = [format_arch(ids) for ids in itertools.product(range(len(OPS)), repeat=len(EDGES))]
        return [lex[i] for i in order]

    @cached_property
    def _connected_mask(self) -> np.ndarray:
        return np.array([_reaches_output(parse_arch(a)) for a in self._by_index])

    @property
    def title(self) -> str:
        return "NB201"

    def canonical(self, arch: str) -> str:
        return format_arch(parse_arch(arch))

    def index(self, arch: str) -> int:
        """The official NAS-Bench-201 / HW-NAS-Bench index (0..15624)."""
        return int(self._official_index[_ordinal(parse_arch(arch))])

    def official_index(self, arch: str) -> int | None:
        return self.index(arch)

    def details(self, arch: str) -> dict[str, object]:
        return {"arch_index": self.index(arch), "connected": self.is_connected(arch)}

    def from_index(self, index: int) -> str:
        if not 0 <= index < NUM_ARCHS:
            raise InvalidArchitecture(f"NB201 index {index} is out of range 0..{NUM_ARCHS - 1}")
        return self._by_index[index]

    def archs(self) -> list[str]:
        """Every cell, in official index order."""
        return list(self._by_index)

    @property
    def genes(self) -> tuple[int, ...]:
        """One gene per edge, its operation."""
        return (len(OPS),) * len(EDGES)

    def to_genes(self, arch: str) -> tuple[int, ...]:
        return parse_arch(arch)

    def from_genes(self, genes: Sequence[int]) -> str:
        return format_arch(tuple(genes))

    def is_connected(self, arch: str) -> bool:
        """Whether some path of non-``none`` edges joins the input to the output."""
        return _reaches_output(parse_arch(arch))

    def is_degenerate(self, arch: str) -> bool:
        """A cell with no input-output path of non-``none`` edges: its output is a constant."""
        return not self.is_connected(arch)

    def effective_costs(self, arch: str, resolution: int | None = None, classes: int | None = None) -> Costs:
        """``costs`` of the cell with every edge off the input-output paths counted as ``none``."""
        return self.costs(format_arch(_live(parse_arch(arch))), resolution, classes)

    def sample(self, n: int, seed: int = 0, connected_only: bool = False) -> list[str]:
        pool = np.flatnonzero(self._connected_mask) if connected_only else np.arange(NUM_ARCHS)
        check_sample_size(n, len(pool), "NB201" + (" (connected cells)" if connected_only else ""))
        picked = np.random.default_rng(seed).choice(pool, size=n, replace=False)
        return [self._by_index[i] for i in picked]

    def encode(self, arch: str) -> ArchGraph:
        """8 nodes: input, the 6 edges as operation nodes, output (the form HELP and NASFLAT use)."""
        op_ids = parse_arch(arch)
        n = len(EDGES) + 2
        ops = np.array([0, *(o + 1 for o in op_ids), len(self.vocabulary) - 1], dtype=np.int64)
        adjacency = np.zeros((n, n), dtype=np.uint8)
        for e, (target, source) in enumerate(EDGES):
            node = e + 1
            if source == 0:
                adjacency[0, node] = 1
            for f, (t2, _) in enumerate(EDGES):
                if t2 == source:
                    adjacency[f + 1, node] = 1
            if target == 3:
                adjacency[node, n - 1] = 1
        return ArchGraph(ops=ops, adjacency=adjacency, vocabulary=self.vocabulary)

    def validate_resolution(self, resolution: int) -> None:
        if resolution < 4 or resolution % 4:
            raise LatbenchError(
                f"NB201 needs an input resolution that is a positive multiple of 4 (two stride-2 "
                f"reductions with residual paths), got {resolution}"
            )

    def costs(self, arch: str, resolution: int | None = None, classes: int | None = None) -> Costs:
        op_ids = parse_arch(arch)
        hw = resolution or self.default_resolution
        self.validate_resolution(hw)
        c = STEM_CHANNELS
        parts = [conv_costs(3, c, 3, hw)]
        for stage in range(3):
            if stage:
                c_in, c, hw = c, c * 2, hw // 2
                parts += [
                    conv_costs(c_in, c, 3, hw),
                    conv_costs(c, c, 3, hw),
                    conv_costs(c_in, c, 1, hw, bn=False),
                ]
            cell = [conv_costs(c, c, {2: 1, 3: 3}[o], hw) for o in op_ids if o in (2, 3)]
            parts += cell * CELLS_PER_STAGE
        parts += [Costs(macs=0, params=2 * c), linear_costs(c, classes or self.default_classes)]
        return total(parts)

    def cost_feature_names(self) -> list[str]:
        """Log MACs and parameters, and the count of each operation."""
        return ["log_macs", "log_params"] + [f"count_{op}" for op in OPS]

    @cached_property
    def _position_costs(self) -> PositionCosts:
        """Each edge's MACs and parameters over the all-``none`` cell, and a one-hot operation count."""
        n_edges, n_ops = len(EDGES), len(OPS)
        empty = self.costs(format_arch((0,) * n_edges))
        table = np.zeros((n_edges, n_ops, 2 + n_ops))
        for e in range(n_edges):
            for o in range(n_ops):
                ids = [0] * n_edges
                ids[e] = o
                c = self.costs(format_arch(tuple(ids)))
                table[e, o, :2] = (c.macs - empty.macs, c.params - empty.params)
                table[e, o, 2 + o] = 1.0
        base = np.zeros(2 + n_ops)
        base[:2] = (empty.macs, empty.params)
        return PositionCosts(table, base, np.array([0, 1]))
