"""The PyTorch builders build the exact benchmark networks: shapes, sizes and costs as the spaces predict them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from latbench.errors import InvalidArchitecture, UnknownSpace
from latbench.spaces import get_space
from latbench.spaces.builders import build_model
from latbench.spaces.builders.fbnet import ChannelShuffle
from latbench.spaces.builders.nb201 import Zero


def nb201_all(op: str) -> str:
    return f"|{op}~0|+|{op}~0|{op}~1|+|{op}~0|{op}~1|{op}~2|"


def fbnet_of(*first: str) -> str:
    return "-".join([*first] + ["skip"] * (22 - len(first)))


def forward(model: nn.Module, batch: int, resolution: int, seed: int = 0) -> torch.Tensor:
    x = torch.randn(batch, 3, resolution, resolution, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return model(x)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, resolution: int) -> int:
    """Per-image multiply-accumulates of every Conv2d and Linear, counted as they run."""
    macs = 0

    def hook(module: nn.Module, inputs: object, output: torch.Tensor) -> None:
        nonlocal macs
        if isinstance(module, nn.Conv2d):
            macs += output[0].numel() * module.weight[0].numel()
        else:
            macs += module.in_features * module.out_features

    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    handles = [m.register_forward_hook(hook) for m in layers]
    forward(model, 1, resolution)
    for handle in handles:
        handle.remove()
    return macs


@pytest.mark.parametrize(
    ("space", "batch", "resolution", "classes", "shape"),
    [
        ("nb201", 2, 32, None, (2, 10)),
        ("nb201", 3, 64, None, (3, 10)),
        ("fbnet", 2, 32, None, (2, 100)),
        ("fbnet", 2, 64, 10, (2, 10)),
    ],
)
def test_output_shape(space: str, batch: int, resolution: int, classes: int | None, shape: tuple[int, int]) -> None:
    arch = get_space(space).sample(1, seed=0)[0]
    assert forward(build_model(space, arch, classes=classes), batch, resolution).shape == shape


@pytest.mark.parametrize("space", ["nb201", "fbnet"])
@pytest.mark.slow
def test_parameters_match_the_analytic_count(space: str) -> None:
    s = get_space(space)
    for arch in s.sample(5, seed=1):
        assert count_params(build_model(space, arch)) == s.costs(arch).params, arch


@pytest.mark.parametrize(
    ("space", "arch", "params"),
    [
        ("nb201", nb201_all("nor_conv_3x3"), 1_531_546),
        # Cells without convolutions leave stem 432+32, reductions (4608+64)+(9216+64)+512 and
        # (18432+128)+(36864+128)+2048, last BatchNorm 128 and classifier 640+10.
        ("nb201", nb201_all("none"), 73_306),
        ("nb201", nb201_all("skip_connect"), 73_306),
        # Stem 464; 1x1 skips with BN at layers 1, 5, 9, 13, 17, 21: 432+832+2176+7392+20976+65472;
        # head 529408+3008; classifier 150400+100.
        ("fbnet", fbnet_of(), 780_660),
        # Layer 0 as k3_e6 (16->96->16): (1536+192)+(864+192)+(1536+32) = +4352; layer 1 as k5_e1_g2 (16->16->24,
        # 1x1 convs in 2 groups): (128+32)+(400+32)+(192+48) = 832 instead of the skip's 432, +400.
        ("fbnet", fbnet_of("k3_e6", "k5_e1_g2"), 785_412),
    ],
)
def test_parameters_of_known_networks(space: str, arch: str, params: int) -> None:
    assert count_params(build_model(space, arch)) == params


@pytest.mark.parametrize(("space", "resolution"), [("nb201", 32), ("nb201", 64), ("fbnet", 32), ("fbnet", 64)])
@pytest.mark.slow
def test_macs_match_the_analytic_count(space: str, resolution: int) -> None:
    s = get_space(space)
    for arch in s.sample(2, seed=2):
        assert count_macs(build_model(space, arch), resolution) == s.costs(arch, resolution).macs, arch


@pytest.mark.parametrize("space", ["nb201", "fbnet"])
def test_weights_depend_only_on_the_seed(space: str) -> None:
    arch = get_space(space).sample(1, seed=3)[0]
    rng_before = torch.get_rng_state()
    first, again, other = (build_model(space, arch, seed=s).state_dict() for s in (0, 0, 1))
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert all(torch.equal(first[name], again[name]) for name in first)
    differing = [name for name in first if not torch.equal(first[name], other[name])]
    assert any(name.endswith("running_var") for name in differing)
    assert any(name.endswith("weight") for name in differing)


@pytest.mark.parametrize(("space", "arch"), [("nb201", nb201_all("skip_connect")), ("fbnet", fbnet_of("k5_e6"))])
def test_batchnorm_statistics_keep_outputs_near_one(space: str, arch: str) -> None:
    model = build_model(space, arch)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert not model.training
    assert all(not torch.allclose(bn.running_var, torch.ones_like(bn.running_var)) for bn in norms)
    assert all(not torch.allclose(bn.running_mean, torch.zeros_like(bn.running_mean)) for bn in norms)
    a, b = forward(model, 2, 32, seed=0), forward(model, 2, 32, seed=1)
    assert torch.isfinite(a).all() and a.abs().max() < 100
    assert not torch.allclose(a, b)


def test_nb201_builds_none_edges_and_they_cut_the_input_off() -> None:
    model = build_model("nb201", nb201_all("none"))
    assert sum(isinstance(m, Zero) for m in model.modules()) == 6 * 15
    assert torch.equal(forward(model, 2, 32, seed=0), forward(model, 2, 32, seed=1))


def test_channel_shuffle_interleaves_the_groups() -> None:
    x = torch.arange(6.0).reshape(1, 6, 1, 1)
    assert ChannelShuffle(2)(x).flatten().tolist() == [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]


def test_invalid_architectures_and_spaces_are_refused() -> None:
    with pytest.raises(InvalidArchitecture):
        build_model("nb201", "|nor_conv_3x3~0|+|nor_conv_3x3~0|")
    with pytest.raises(InvalidArchitecture):
        build_model("fbnet", fbnet_of("k7_e6"))
    with pytest.raises(UnknownSpace):
        build_model("darts", "anything")
