"""What a predictor reads of an architecture: the op graph, and analytic cost features.

Every architecture of a space shares one adjacency (NB201: the 6 edges as op nodes between input and output,
``none`` included; FBNet: a chain of 22 blocks), so a batch is an op-id matrix plus one adjacency matrix.

The cost features are what a roofline model of latency would read: MACs, parameters, and for FBNet the kernel
launches, pointwise and depthwise MACs and activation traffic, plus the count of each operation. Every one of
them is a sum over the architecture's positions (edge or layer), so they come from a per-(position, op) table
built once from the space's analytic costs, and featurising all 15,625 NB201 cells takes milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from latbench.spaces import fbnet, get_space, nb201


@dataclass(frozen=True)
class ArchBatch:
    """Architectures as graph-predictor input: ``ops`` (n, nodes) vocabulary ids, one shared ``adjacency``."""

    ops: np.ndarray
    adjacency: np.ndarray
    vocabulary_size: int


_PARSED: dict[str, dict[str, tuple[int, ...]]] = {"nb201": {}, "fbnet": {}}
_CACHE_LIMIT = 500_000


def codes(space: str, archs: Sequence[str]) -> np.ndarray:
    """Each architecture's op id per position (NB201: 6 edges, FBNet: 22 layers), validating every string.

    Parsed strings are remembered (up to ``_CACHE_LIMIT`` per space), so ranking the same candidates again
    skips the parser.
    """
    name = get_space(space).name
    parse = {"nb201": nb201.parse_arch, "fbnet": fbnet.parse_arch}[name]
    seen = _PARSED[name]
    rows = []
    for a in archs:
        row = seen.get(a) if isinstance(a, str) else None
        if row is None:
            row = parse(a)
            if len(seen) < _CACHE_LIMIT:
                seen[a] = row
        rows.append(row)
    width = nb201.EDGES if name == "nb201" else fbnet.MACRO
    return np.array(rows, dtype=np.int64).reshape(len(rows), len(width))


def graph_batch(space: str, arch_codes: np.ndarray) -> ArchBatch:
    sp = get_space(space)
    n = arch_codes.shape[0]
    ops = np.concatenate(
        [np.zeros((n, 1), np.int64), arch_codes + 1, np.full((n, 1), len(sp.vocabulary) - 1, np.int64)], axis=1
    )
    return ArchBatch(ops=ops, adjacency=_adjacency(sp.name), vocabulary_size=len(sp.vocabulary))


@cache
def _adjacency(space: str) -> np.ndarray:
    sp = get_space(space)
    example = nb201.EXAMPLE if space == "nb201" else fbnet.EXAMPLE
    return sp.encode(example).adjacency.astype(np.float32)


def cost_feature_names(space: str) -> list[str]:
    ops = nb201.OPS if get_space(space).name == "nb201" else fbnet.BLOCKS
    additive = ["log_macs", "log_params"]
    if space == "fbnet":
        additive += ["launches", "log_pointwise_macs", "log_depthwise_macs", "log_activations"]
    return additive + [f"count_{op}" for op in ops]


def cost_features(space: str, arch_codes: np.ndarray) -> np.ndarray:
    """The cost features (``cost_feature_names``) of each architecture, float64 (n, k)."""
    table, base, logged = _cost_table(get_space(space).name)
    positions = np.arange(arch_codes.shape[1])
    raw = base + table[positions, arch_codes].sum(axis=1)
    raw[:, logged] = np.log(np.maximum(raw[:, logged], 1.0))
    return raw


@cache
def _cost_table(space: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(positions, ops, k) contributions, the constant part, and which columns are logged."""
    return _nb201_table() if space == "nb201" else _fbnet_table()


def _nb201_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sp = get_space("nb201")
    n_edges, n_ops = len(nb201.EDGES), len(nb201.OPS)
    empty = sp.costs(nb201.format_arch((0,) * n_edges))
    table = np.zeros((n_edges, n_ops, 2 + n_ops))
    for e in range(n_edges):
        for o in range(n_ops):
            ids = [0] * n_edges
            ids[e] = o
            c = sp.costs(nb201.format_arch(tuple(ids)))
            table[e, o, :2] = (c.macs - empty.macs, c.params - empty.params)
            table[e, o, 2 + o] = 1.0
    base = np.zeros(2 + n_ops)
    base[:2] = (empty.macs, empty.params)
    return table, base, np.array([0, 1])


def _fbnet_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_blocks = len(fbnet.BLOCKS)
    table = np.zeros((fbnet.NUM_LAYERS, n_blocks, 6 + n_blocks))
    hw = get_space("fbnet").default_resolution
    for position, layer in enumerate(fbnet.MACRO):
        out_hw = hw
        for b, name in enumerate(fbnet.BLOCKS):
            block = fbnet.Block.parse(name)
            cost, out_hw = fbnet.block_costs(block, layer, hw)
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
            table[position, b, :6] = (cost.macs, cost.params, launches, cost.macs - depthwise, depthwise, activations)
            table[position, b, 6 + b] = 1.0
        hw = out_hw
    sp = get_space("fbnet")
    whole = sp.costs(fbnet.EXAMPLE)
    layers = table[np.arange(fbnet.NUM_LAYERS), fbnet.parse_arch(fbnet.EXAMPLE), :2].sum(axis=0)
    base = np.zeros(6 + n_blocks)
    base[:2] = (whole.macs - layers[0], whole.params - layers[1])
    return table, base, np.array([0, 1, 3, 4, 5])
