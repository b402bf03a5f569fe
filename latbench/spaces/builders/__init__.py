"""PyTorch builders of each space's benchmark network, with seeded weights; the only part of spaces that needs torch."""

from __future__ import annotations

import math
from collections.abc import Callable
from importlib import import_module

from latbench.errors import ArtifactError, LatbenchError, MissingDependency
from latbench.spaces import SearchSpace, get_space

try:
    import torch
    from torch import nn
except ImportError as exc:
    raise MissingDependency("torch", "build", "building PyTorch models") from exc

CALIBRATION_BATCH = 2
"""Images in the seeded batch that sets BatchNorm statistics; two give every channel at least 32 samples."""


class NoBuilder(LatbenchError):
    """The space registers no PyTorch builder, or its builder cannot be imported."""


def builder_of(space: SearchSpace) -> Callable[[str, int], nn.Module]:
    """The space's ``build(arch, classes)`` function, imported from its ``builder`` path now."""
    if not space.builder:
        raise NoBuilder(f"search space {space.name!r} registers no PyTorch builder, so its networks cannot be built")
    module_name, _, attr = space.builder.partition(":")
    try:
        build = getattr(import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise NoBuilder(f"cannot load the builder {space.builder!r} of search space {space.name!r}: {exc}") from exc
    if not callable(build):
        raise NoBuilder(f"the builder {space.builder!r} of search space {space.name!r} is not callable")
    return build


def build_model(space: str, arch: str, *, classes: int | None = None, seed: int = 0) -> nn.Module:
    """The benchmark network of ``arch`` in eval mode, with weights that depend only on ``seed``.

    Latency does not depend on weight values, but numerical checks between runtimes do: every weight and
    every BatchNorm statistic comes from a local generator, so the same seed gives the same model and the
    global RNG is left as it was.
    """
    s = get_space(space)
    canonical = s.canonical(arch)
    build = builder_of(s)
    with torch.random.fork_rng(devices=[]):
        try:
            model = build(canonical, classes or s.default_classes)
        except LatbenchError:
            raise
        except Exception as exc:  # a plugin's own bug: say whose, where latbench would call it an internal error
            raise ArtifactError(
                f"the builder {s.builder} of search space {s.name!r} failed on {canonical}: {type(exc).__name__}: {exc}"
            ) from exc
    generator = torch.Generator().manual_seed(seed)
    initialise(model, generator)
    calibrate(model, s.input_resolution(canonical), generator)
    return model.eval()


@torch.no_grad()
def initialise(model: nn.Module, generator: torch.Generator) -> None:
    """He-normal convs, LeCun-normal linears and BatchNorm affines away from the identity, so no layer is a no-op."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            fan_in = module.weight[0].numel()
            gain = 2.0 if isinstance(module, nn.Conv2d) else 1.0
            module.weight.normal_(0.0, math.sqrt(gain / fan_in), generator=generator)
            if module.bias is not None:
                module.bias.uniform_(-0.1, 0.1, generator=generator)
        elif isinstance(module, nn.BatchNorm2d):
            module.weight.uniform_(0.5, 1.5, generator=generator)
            module.bias.normal_(0.0, 0.1, generator=generator)


@torch.no_grad()
def calibrate(model: nn.Module, resolution: int, generator: torch.Generator) -> None:
    """Set every BatchNorm's running statistics to those of one seeded random batch.

    Random statistics let activations grow layer after layer (logits near 1e6 in FBNet), which makes comparisons
    between runtimes meaningless in float32 and overflows float16 ones; measured statistics keep them near 1.
    The pass runs in float64, so differences in summation order between CPUs vanish when the statistics are
    rounded to float32 and the exported bytes stay the same.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [bn.momentum for bn in norms]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None
    x = torch.randn(CALIBRATION_BATCH, 3, resolution, resolution, generator=generator, dtype=torch.float64)
    model.double().train()(x)
    model.float()
    for bn, momentum in zip(norms, momenta):
        bn.momentum = momentum


__all__ = ["NoBuilder", "build_model", "builder_of"]
