"""Once-for-All's MobileNetV3 space (``ofa-mbv3``) as HELP published it: 20 block slots, 5 depths, one resolution.

The canonical string is HELP's ``arch`` column, ``ks=K x20|e=E x20|d=D x5|r=R``: slot i is block i % 4 of stage
i // 4, and only the first ``d[s]`` slots of stage s are built. The unused slots keep the values they were drawn
with (OFA samples every slot, then the depths), so two strings can name one network; ``network_key`` zeroes them.

The network is OFA's ``ofa_mbv3_d234_e346_k357_w1.2`` subnet. The width multiplier 1.2 is likely but unconfirmed:
HELP does not record it, and that supernet is the only OFA MobileNetV3 that HELP uses. The macro network
(``STAGES``, ``SLOT_TABLE`` and the fixed widths) lives here; the PyTorch builder reads the same tables.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from latbench.errors import InvalidArchitecture, LatbenchError
from latbench.spaces.base import ArchGraph, Costs, SearchSpace, check_sample_size

KERNELS = (3, 5, 7)
EXPANDS = (3, 4, 6)
DEPTHS = (2, 3, 4)
RESOLUTIONS = tuple(range(128, 225, 4))
NUM_STAGES = 5
SLOTS_PER_STAGE = 4
NUM_SLOTS = NUM_STAGES * SLOTS_PER_STAGE
WIDTH_MULT = 1.2
DIVISOR = 8
SE_REDUCTION = 4
FIELDS = ("ks", "e", "d", "r")
HINT = (
    "an OFA MobileNetV3 architecture is 'ks=K,...|e=E,...|d=D,...|r=R' with 20 K in 3,5,7, 20 E in 3,4,6, "
    "5 D in 2,3,4 and R in 128..224 step 4"
)


def make_divisible(value: float | np.ndarray) -> np.ndarray:
    """OFA's channel rounding: to the nearest multiple of 8, at least 8, and never more than 10% below ``value``."""
    v = np.asarray(value, dtype=np.float64)
    rounded = np.maximum(DIVISOR, np.floor((v + DIVISOR / 2) / DIVISOR) * DIVISOR)
    return np.where(rounded < 0.9 * v, rounded + DIVISOR, rounded).astype(np.int64)


def mid_channels(c_in: int | np.ndarray, expand: int | np.ndarray) -> np.ndarray:
    """Channels inside an MBConv block (OFA's ``active_middle_channel``)."""
    return make_divisible(np.round(np.asarray(c_in) * expand))


def se_channels(mid: int | np.ndarray) -> np.ndarray:
    """Channels inside OFA's squeeze-and-excite of a block with ``mid`` channels."""
    return make_divisible(np.asarray(mid) // SE_REDUCTION)


STEM_CHANNELS = int(make_divisible(16 * WIDTH_MULT))
FIRST_BLOCK_CHANNELS = int(make_divisible(16 * WIDTH_MULT))
FINAL_EXPAND_CHANNELS = int(make_divisible(960 * WIDTH_MULT))
LAST_CHANNELS = int(make_divisible(1280 * WIDTH_MULT))


@dataclass(frozen=True)
class Stage:
    """A searchable stage: output width, stride of its first block, activation, squeeze-and-excite."""

    width: int
    stride: int
    activation: str
    se: bool


STAGES: tuple[Stage, ...] = tuple(
    Stage(int(make_divisible(base * WIDTH_MULT)), stride, act, se)
    for base, stride, act, se in zip(
        (24, 40, 80, 112, 160),
        (2, 2, 2, 1, 2),
        ("relu", "relu", "h_swish", "h_swish", "h_swish"),
        (False, True, False, True, True),
    )
)


@dataclass(frozen=True)
class Slot:
    """One of the 20 block positions; its shape does not depend on which slots before it are built."""

    stage: int
    position: int
    c_in: int
    c_out: int
    stride: int

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.c_in == self.c_out


def _slots() -> tuple[Slot, ...]:
    slots, c_prev = [], FIRST_BLOCK_CHANNELS
    for s, stage in enumerate(STAGES):
        for i in range(SLOTS_PER_STAGE):
            slots.append(Slot(s, i, c_prev if i == 0 else stage.width, stage.width, stage.stride if i == 0 else 1))
        c_prev = stage.width
    return tuple(slots)


SLOT_TABLE: tuple[Slot, ...] = _slots()
BLOCK_OPS: tuple[str, ...] = tuple(f"mb_k{k}_e{e}" for k, e in itertools.product(KERNELS, EXPANDS))


@dataclass(frozen=True)
class OFAArch:
    """A parsed architecture: per-slot kernels and expand ratios, per-stage depths, input resolution."""

    ks: tuple[int, ...]
    e: tuple[int, ...]
    d: tuple[int, ...]
    r: int

    def active(self, slot: int) -> bool:
        return slot % SLOTS_PER_STAGE < self.d[slot // SLOTS_PER_STAGE]

    def format(self, masked: bool = False) -> str:
        ks = [k if not masked or self.active(i) else 0 for i, k in enumerate(self.ks)]
        e = [x if not masked or self.active(i) else 0 for i, x in enumerate(self.e)]
        return f"ks={_join(ks)}|e={_join(e)}|d={_join(self.d)}|r={self.r}"


def _join(values: Sequence[int]) -> str:
    return ",".join(str(v) for v in values)


def parse_arch(arch: str) -> OFAArch:
    """The parts of ``arch``; ``InvalidArchitecture`` says what is wrong."""
    if not isinstance(arch, str):
        raise InvalidArchitecture(f"an OFA MobileNetV3 architecture is a string, got {type(arch).__name__}")
    fields: dict[str, str] = {}
    for part in arch.strip().split("|"):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in FIELDS:
            raise InvalidArchitecture(f"unknown field {part!r} in {arch!r}; {HINT}")
        if key in fields:
            raise InvalidArchitecture(f"field {key!r} appears twice in {arch!r}; {HINT}")
        fields[key] = value
    missing = [k for k in FIELDS if k not in fields]
    if missing:
        raise InvalidArchitecture(f"{arch!r} lacks field(s) {', '.join(missing)}; {HINT}")
    return OFAArch(
        ks=_values(arch, "ks", fields["ks"], NUM_SLOTS, KERNELS),
        e=_values(arch, "e", fields["e"], NUM_SLOTS, EXPANDS),
        d=_values(arch, "d", fields["d"], NUM_STAGES, DEPTHS),
        r=_values(arch, "r", fields["r"], 1, RESOLUTIONS)[0],
    )


def _values(arch: str, key: str, text: str, count: int, allowed: tuple[int, ...]) -> tuple[int, ...]:
    items = [item.strip() for item in text.split(",")]
    if len(items) != count:
        raise InvalidArchitecture(f"{arch!r} has {len(items)} {key} value(s), expected {count}; {HINT}")
    bad = [(i, item) for i, item in enumerate(items) if not item.isdecimal() or int(item) not in allowed]
    if bad:
        where = ", ".join(f"{key}[{i}] = {item!r}" for i, item in bad[:3])
        choices = f"{allowed[0]}..{allowed[-1]} step 4" if key == "r" else ", ".join(map(str, allowed))
        raise InvalidArchitecture(f"{where} in {arch!r} is not one of {choices}; {HINT}")
    return tuple(int(item) for item in items)


@dataclass(frozen=True)
class _Batch:
    """Many architectures as arrays: ks and e (n, 20), d (n, 5), r (n,), all int64."""

    ks: np.ndarray
    e: np.ndarray
    d: np.ndarray
    r: np.ndarray

    @staticmethod
    def of(archs: Sequence[OFAArch]) -> _Batch:
        return _Batch(
            ks=np.array([a.ks for a in archs], dtype=np.int64).reshape(-1, NUM_SLOTS),
            e=np.array([a.e for a in archs], dtype=np.int64).reshape(-1, NUM_SLOTS),
            d=np.array([a.d for a in archs], dtype=np.int64).reshape(-1, NUM_STAGES),
            r=np.array([a.r for a in archs], dtype=np.int64),
        )

    @property
    def active(self) -> np.ndarray:
        """(n, 20) bool: which slots are built."""
        slots = np.arange(NUM_SLOTS)
        return slots % SLOTS_PER_STAGE < self.d[:, slots // SLOTS_PER_STAGE]


class _Tally:
    """Per-architecture running totals of the layers the builder builds, one entry per architecture."""

    def __init__(self, n: int) -> None:
        self.macs, self.params, self.pointwise, self.depthwise, self.activations, self.launches = (
            np.zeros(n, dtype=np.int64) for _ in range(6)
        )

    def conv(
        self,
        c_in: int | np.ndarray,
        c_out: int | np.ndarray,
        kernel: int | np.ndarray,
        hw: int | np.ndarray,
        *,
        depthwise: bool = False,
        bn: bool = True,
        bias: bool = False,
        on: bool | np.ndarray = True,
    ) -> None:
        """A Conv2d (a Linear is a 1x1 conv on 1x1) writing ``c_out`` x ``hw`` x ``hw``, counted where ``on``."""
        weights = np.asarray((1 if depthwise else c_in) * c_out * kernel * kernel) * on
        macs = weights * hw * hw
        self.macs += macs
        self.params += weights + (np.asarray(c_out) * on) * (2 * bn + bias)
        if depthwise:
            self.depthwise += macs
        elif np.all(np.asarray(kernel) == 1):
            self.pointwise += macs
        self.activations += np.asarray(c_out * hw * hw) * on
        self.launches += np.asarray(on, dtype=np.int64)

    def ops(self, count: int | np.ndarray) -> None:
        """Kernels that are neither conv nor linear: pooling, the SE multiply, residual additions."""
        self.launches += np.asarray(count, dtype=np.int64)


def _out(hw: np.ndarray, stride: int) -> np.ndarray:
    """Output size of an odd kxk conv with OFA's same padding (k // 2), whatever k is."""
    return (hw - 1) // stride + 1


def _tally(batch: _Batch, classes: int) -> _Tally:
    """Every layer of every architecture of ``batch`` at its own resolution ``batch.r``."""
    t = _Tally(len(batch.r))
    hw = _out(batch.r, 2)
    t.conv(3, STEM_CHANNELS, 3, hw)
    t.conv(STEM_CHANNELS, STEM_CHANNELS, 3, hw, depthwise=True)
    t.conv(STEM_CHANNELS, FIRST_BLOCK_CHANNELS, 1, hw)
    t.ops(int(STEM_CHANNELS == FIRST_BLOCK_CHANNELS))
    active = batch.active
    for j, slot in enumerate(SLOT_TABLE):
        on = active[:, j]
        hw_out = _out(hw, slot.stride)
        mid = mid_channels(slot.c_in, batch.e[:, j])
        t.conv(slot.c_in, mid, 1, hw, on=on)
        t.conv(mid, mid, batch.ks[:, j], hw_out, depthwise=True, on=on)
        if STAGES[slot.stage].se:
            squeezed = se_channels(mid)
            t.conv(mid, squeezed, 1, 1, bn=False, bias=True, on=on)
            t.conv(squeezed, mid, 1, 1, bn=False, bias=True, on=on)
            t.ops(2 * on)
        t.conv(mid, slot.c_out, 1, hw_out, on=on)
        t.ops(on * slot.residual)
        hw = hw_out
    t.conv(STAGES[-1].width, FINAL_EXPAND_CHANNELS, 1, hw)
    t.ops(1)
    t.conv(FINAL_EXPAND_CHANNELS, LAST_CHANNELS, 1, 1, bn=False)
    t.conv(LAST_CHANNELS, classes, 1, 1, bn=False, bias=True)
    return t


COUNT_FEATURES = tuple(f"blocks_k{k}_e{e}" for k, e in itertools.product(KERNELS, EXPANDS))
COST_FEATURES = (
    "log_macs",
    "log_params",
    "launches",
    "log_pointwise_macs",
    "log_depthwise_macs",
    "log_activations",
    *COUNT_FEATURES,
    "se_blocks",
)


def _of_genes(genes: Sequence[int] | np.ndarray) -> OFAArch:
    g = [int(x) for x in genes]
    k, x, d = NUM_SLOTS, 2 * NUM_SLOTS, 2 * NUM_SLOTS + NUM_STAGES
    return OFAArch(
        ks=tuple(KERNELS[i] for i in g[:k]),
        e=tuple(EXPANDS[i] for i in g[k:x]),
        d=tuple(DEPTHS[i] for i in g[x:d]),
        r=RESOLUTIONS[g[d]],
    )


class OFAMobileNetV3(SearchSpace):
    """OFA's MobileNetV3 space (w1.2) on ImageNet: 5 stages of 2-4 MBConv blocks (k 3/5/7, e 3/4/6), r 128-224.

    The graph encoding carries the resolution as the input node's operation (``r128`` ... ``r224``): it scales
    every layer's cost, and a graph predictor that reads only ``encode`` would otherwise see two networks that
    differ only in resolution as one.
    """

    name = "ofa-mbv3"
    vocabulary = (*(f"r{r}" for r in RESOLUTIONS), *BLOCK_OPS, "skip", "output")
    default_resolution = 224
    default_classes = 1000
    builder = "latbench.spaces.builders.ofa:build"

    def canonical(self, arch: str) -> str:
        return parse_arch(arch).format()

    def network_key(self, arch: str) -> str:
        """``arch`` with the unused slots' ``ks`` and ``e`` set to 0: equal keys, equal networks."""
        return parse_arch(arch).format(masked=True)

    def input_resolution(self, arch: str) -> int:
        return parse_arch(arch).r

    def sample(self, n: int, seed: int = 0, connected_only: bool = False) -> list[str]:
        """``n`` architectures of distinct networks, each drawn as OFA does: every slot, then the depths, then r.

        Architectures are drawn one after another, so a smaller ``n`` gives a prefix of a larger one. Every
        network is connected, so ``connected_only`` changes nothing.
        """
        per_stage = sum((len(KERNELS) * len(EXPANDS)) ** d for d in DEPTHS)
        check_sample_size(n, per_stage**NUM_STAGES * len(RESOLUTIONS), "OFA MobileNetV3")
        rng = np.random.default_rng(seed)
        choices = np.array(self.genes)
        seen: dict[str, str] = {}
        while len(seen) < n:
            for genes in rng.integers(0, choices, size=(n - len(seen), len(choices))):
                a = _of_genes(genes)
                seen.setdefault(a.format(masked=True), a.format())
        return list(seen.values())

    @property
    def genes(self) -> tuple[int, ...]:
        """20 kernel genes, 20 expand genes, 5 depth genes (3 choices each), then the resolution (25)."""
        return (
            (len(KERNELS),) * NUM_SLOTS
            + (len(EXPANDS),) * NUM_SLOTS
            + (len(DEPTHS),) * NUM_STAGES
            + (len(RESOLUTIONS),)
        )

    def to_genes(self, arch: str) -> tuple[int, ...]:
        """Choice indices of every slot, used or not, so ``from_genes`` gives back the same string."""
        a = parse_arch(arch)
        return (
            *(KERNELS.index(k) for k in a.ks),
            *(EXPANDS.index(x) for x in a.e),
            *(DEPTHS.index(x) for x in a.d),
            RESOLUTIONS.index(a.r),
        )

    def from_genes(self, genes: Sequence[int]) -> str:
        values = list(genes)
        if len(values) != len(self.genes):
            raise InvalidArchitecture(f"an OFA MobileNetV3 genome has {len(self.genes)} genes, got {len(values)}")
        bad = [
            f"gene {i} = {g} (choices 0..{k - 1})" for i, (g, k) in enumerate(zip(values, self.genes)) if not 0 <= g < k
        ]
        if bad:
            raise InvalidArchitecture(f"OFA MobileNetV3 genes out of range: {', '.join(bad[:3])}")
        return _of_genes(values).format()

    def encode(self, arch: str) -> ArchGraph:
        """22 nodes in a chain: input (op ``r{R}``), the 20 slots (``mb_k{K}_e{E}``, ``skip`` if unused), output."""
        ops, adjacency = self.encode_batch([arch])
        return ArchGraph(ops=ops[0], adjacency=adjacency.astype(np.uint8), vocabulary=self.vocabulary)

    def encode_batch(self, archs: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Vocabulary ids (n, 22) int64 and the chain adjacency (22, 22) float32 shared by every architecture."""
        b = _Batch.of([parse_arch(a) for a in archs])
        first_block = len(RESOLUTIONS)
        block = first_block + (np.searchsorted(KERNELS, b.ks) * len(EXPANDS) + np.searchsorted(EXPANDS, b.e))
        slots = np.where(b.active, block, first_block + len(BLOCK_OPS))
        n = len(b.r)
        ops = np.concatenate(
            [
                np.searchsorted(RESOLUTIONS, b.r)[:, None],
                slots,
                np.full((n, 1), len(self.vocabulary) - 1),
            ],
            axis=1,
        ).astype(np.int64)
        nodes = NUM_SLOTS + 2
        return ops, np.eye(nodes, k=1, dtype=np.float32)

    def validate_resolution(self, resolution: int) -> None:
        if resolution < 32:
            raise LatbenchError(
                f"OFA MobileNetV3 needs an input resolution of at least 32 (five stride-2 layers), got {resolution}"
            )

    def costs(self, arch: str, resolution: int | None = None, classes: int | None = None) -> Costs:
        """MACs and parameters at ``resolution``, by default the architecture's own ``r``."""
        a = parse_arch(arch)
        if resolution is not None:
            self.validate_resolution(resolution)
        b = _Batch.of([a])
        if resolution is not None:
            b = _Batch(b.ks, b.e, b.d, np.array([resolution], dtype=np.int64))
        t = _tally(b, classes or self.default_classes)
        return Costs(macs=int(t.macs[0]), params=int(t.params[0]))

    def cost_feature_names(self) -> list[str]:
        """Logs of MACs, parameters, 1x1-conv and depthwise MACs and activations written (elements per image);
        kernel launches with BatchNorm and activations fused; built blocks per (kernel, expand) and with SE."""
        return list(COST_FEATURES)

    def cost_features(self, archs: Sequence[str]) -> np.ndarray:
        b = _Batch.of([parse_arch(a) for a in archs])
        t = _tally(b, self.default_classes)
        active = b.active
        counts = [((b.ks == k) & (b.e == e) & active).sum(axis=1) for k, e in itertools.product(KERNELS, EXPANDS)]
        se_slots = np.array([STAGES[slot.stage].se for slot in SLOT_TABLE])
        columns = [
            np.log(t.macs),
            np.log(t.params),
            t.launches,
            np.log(t.pointwise),
            np.log(t.depthwise),
            np.log(t.activations),
            *counts,
            (active & se_slots).sum(axis=1),
        ]
        return np.stack(columns, axis=1).astype(np.float64).reshape(len(b.r), len(COST_FEATURES))
