"""Zero-cost proxies: scores of an untrained network on one random batch that correlate with its cost or quality.

Our own implementations of the published definitions, computed on one seeded batch of Gaussian images with
random labels, BatchNorm in training mode (batch statistics). Weight-based sums run over every ``Conv2d`` and
``Linear`` layer. Each proxy is defined where it is computed:

- ``grad_norm``: sum of the layers' gradient L2 norms (Abdelfattah et al. 2021).
- ``snip``: ``sum |g * w|``, connection sensitivity (Lee et al. 2019); ``plain``: ``sum g * w``.
- ``fisher``: over every conv/linear output ``a`` with gradient ``ga``, ``0.5 * mean_n sum_c (sum_hw a * ga)^2``
  (Turner et al. 2020, Theis et al. 2018).
- ``jacov``: ``-sum_i log(v_i + k) + 1 / (v_i + k)`` over the eigenvalues ``v`` of the correlation matrix of the
  per-image input gradients, ``k = 1e-5`` (Mellor et al. 2020, v1). We take the gradient of the loss, not of the
  summed logits, so it comes from the same backward pass as the weight gradients (half the cost).
- ``epe_nas``: ``sum_c |sum_ij log(|C_c,ij| + k)|`` with ``C_c`` that correlation matrix within class ``c``; the
  random labels are folded into ``EPE_CLASSES`` classes so each holds several images (Lopes et al. 2021).
- ``nwot``: ``log |det K|``, ``K = sum_relu (c c^T + (1-c)(1-c)^T)`` over the binary ReLU codes ``c`` of the
  images (Mellor et al. 2021).
- ``zen``: ``log E||f(x) - f(x + 0.01 e)|| / 0.01 + sum_bn log sqrt(mean batch variance)`` with ``f`` the features
  before global pooling (Lin et al. 2021).
- ``synflow``: ``log(1 + sum |w * dR/dw|)`` with BatchNorm removed, ``|w|`` weights, ``R`` the summed output of an
  all-ones image in float64 (Tanaka et al. 2020); logged because it spans hundreds of orders of magnitude.
- ``l2_norm``: sum of the layers' weight L2 norms.

GraSP (``-w * Hg``) is left out: its Hessian-vector product triples the cost of the whole set.

Degenerate networks (all-``none`` NB201 cells: zero Jacobians, constant ReLU codes) get finite values: zero
correlations count as perfect (uninformative) ones and a singular ``K`` scores 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

JACOBIAN_K = 1e-5
EPE_CLASSES = 2
ZEN_EPSILON = 0.01
MODEL_PROXIES: tuple[str, ...] = (
    "grad_norm",
    "snip",
    "plain",
    "fisher",
    "jacov",
    "epe_nas",
    "nwot",
    "zen",
    "synflow",
    "l2_norm",
)
"""The proxies ``score`` computes from a network, in column order."""


@dataclass(frozen=True)
class Batch:
    """One seeded batch: images, labels and the Gaussian noise Zen perturbs the images with."""

    images: torch.Tensor
    labels: torch.Tensor
    noise: torch.Tensor

    @staticmethod
    def make(size: int, resolution: int, classes: int, seed: int) -> Batch:
        g = torch.Generator().manual_seed(seed)
        shape = (size, 3, resolution, resolution)
        images = torch.randn(shape, generator=g)
        labels = torch.randint(0, classes, (size,), generator=g)
        return Batch(images, labels, torch.randn(shape, generator=g))


def _layers(model: nn.Module) -> list[nn.Conv2d | nn.Linear]:
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _correlation(rows: np.ndarray) -> np.ndarray:
    """Row correlation matrix where a constant row (a zero Jacobian) correlates perfectly with every row."""
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(rows)
    return np.nan_to_num(np.atleast_2d(corr), nan=1.0)


def jacov(jacobians: np.ndarray) -> float:
    v = np.linalg.eigvalsh(_correlation(jacobians))
    return float(-np.sum(np.log(np.abs(v) + JACOBIAN_K) + 1.0 / (np.abs(v) + JACOBIAN_K)))


def epe_nas(jacobians: np.ndarray, labels: np.ndarray) -> float:
    total = 0.0
    for c in np.unique(labels):
        rows = jacobians[labels == c]
        if len(rows) > 1:
            total += abs(float(np.sum(np.log(np.abs(_correlation(rows)) + JACOBIAN_K))))
    return total


def nwot(kernel: np.ndarray) -> float:
    sign, logdet = np.linalg.slogdet(kernel)
    return float(logdet) if sign > 0 and np.isfinite(logdet) else 0.0


class _Recorder:
    """Forward hooks that keep what the proxies read: ReLU code agreements, layer outputs, pooled features.

    The NWOT kernel uses ``c c^T + (1-c)(1-c)^T = (s s^T + D) / 2`` with ``s = 2c - 1``: one product per ReLU.
    """

    def __init__(self, model: nn.Module) -> None:
        self.kernel: torch.Tensor | None = None
        self.outputs: list[torch.Tensor] = []
        self.features: torch.Tensor | None = None
        self.handles = []
        for m in model.modules():
            if isinstance(m, nn.ReLU):
                self.handles.append(m.register_forward_hook(self._relu))
            elif isinstance(m, (nn.Conv2d, nn.Linear)):
                self.handles.append(m.register_forward_hook(self._output))
            elif isinstance(m, nn.AdaptiveAvgPool2d):
                self.handles.append(m.register_forward_hook(self._pool))

    def _relu(self, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        x = inputs[0].detach().flatten(1)
        signs = torch.where(x > 0, 1.0, -1.0)
        k = ((signs @ signs.T).double() + x.shape[1]) / 2
        self.kernel = k if self.kernel is None else self.kernel + k

    def _output(self, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        self.outputs.append(output)

    def _pool(self, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        self.features = inputs[0].detach()

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def _batch_log_std(model: nn.Module) -> float:
    """``sum_bn log sqrt(mean batch variance)``, read from the running variances ``_keep_batch_stats`` set up."""
    variances = [m.running_var for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    return float(sum(0.5 * np.log(float(v.mean()) + 1e-12) for v in variances if v is not None))


def _keep_batch_stats(model: nn.Module) -> None:
    """Make each BatchNorm's running statistics those of the next training-mode batch (Zen reads them)."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = 1.0


def _bypass(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
    return inputs[0]


def _synflow(model: nn.Module, resolution: int) -> float:
    """Destroys ``model`` (weights made absolute): run it last. BatchNorm is bypassed by a hook returning its input."""
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.register_forward_hook(_bypass)
    model.double()
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    model.zero_grad(set_to_none=True)
    model(torch.ones(1, 3, resolution, resolution, dtype=torch.float64)).sum().backward()
    with torch.no_grad():
        total = sum(float((m.weight * m.weight.grad).abs().sum()) for m in _layers(model) if m.weight.grad is not None)
    return float(np.log1p(total))


def score(model: nn.Module, batch: Batch) -> dict[str, float]:
    """Every proxy of ``MODEL_PROXIES`` for ``model`` on ``batch``; consumes the model (synflow rewrites it).

    One forward and one backward of the loss give the gradient proxies, the input Jacobians and the ReLU codes;
    Zen adds one forward without gradients and synflow one single-image pass.
    """
    model.train()
    layers = _layers(model)
    weights = [m.weight for m in layers]
    _keep_batch_stats(model)
    rec = _Recorder(model)
    x = batch.images.clone().requires_grad_(True)
    loss = nn.functional.cross_entropy(model(x), batch.labels)
    outputs = rec.outputs
    grads = torch.autograd.grad(loss, [*weights, *outputs, x], allow_unused=True)
    g_w = [torch.zeros_like(w) if g is None else g for w, g in zip(weights, grads)]
    g_a = grads[len(weights) : -1]
    jacobians = grads[-1].flatten(1).double().numpy()
    result: dict[str, float] = {}
    with torch.no_grad():
        result["grad_norm"] = float(sum(g.norm() for g in g_w))
        result["snip"] = float(sum((g * w).abs().sum() for g, w in zip(g_w, weights)))
        result["plain"] = float(sum((g * w).sum() for g, w in zip(g_w, weights)))
        fisher = 0.0
        for a, ga in zip(outputs, g_a):
            if ga is not None:
                s = (a * ga).flatten(2).sum(-1) if a.dim() == 4 else a * ga
                fisher += float(0.5 * s.pow(2).sum(-1).mean())
        result["fisher"] = fisher
        result["l2_norm"] = float(sum(w.norm() for w in weights))
        result["jacov"] = jacov(jacobians)
        result["epe_nas"] = epe_nas(jacobians, batch.labels.numpy() % EPE_CLASSES)
        result["nwot"] = nwot(rec.kernel.numpy()) if rec.kernel is not None else 0.0
        features, bn_log_std = rec.features, _batch_log_std(model)
        rec.outputs = []
        model(batch.images + ZEN_EPSILON * batch.noise)
        rec.remove()
        if features is None or rec.features is None:
            result["zen"] = 0.0
        else:
            delta = (features - rec.features).flatten(1).norm(dim=1).mean().double()
            result["zen"] = float(torch.log(delta / ZEN_EPSILON + 1e-12) + bn_log_std)
    del grads, g_w, g_a, outputs, loss
    result["synflow"] = _synflow(model, batch.images.shape[-1])
    return {name: result[name] for name in MODEL_PROXIES}
