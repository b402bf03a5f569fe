"""Training loops shared by the graph and MLP predictors: pairwise hinge loss, AdamW, cosine schedule.

Batches hold one device each, so every pair in a batch compares latencies measured on the same device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from latbench.predictor.loss import minmax, pairwise_hinge


@dataclass(frozen=True)
class Samples:
    """Training rows: op ids (n, N), supplementary (n, k) or None, device row (n,), min-max target (n,)."""

    ops: np.ndarray
    supplementary: np.ndarray | None
    device: np.ndarray
    target: np.ndarray


def device_samples(
    ops: np.ndarray, supplementary: np.ndarray | None, latency: np.ndarray, device: int, rows: np.ndarray
) -> Samples:
    """The rows ``rows`` of one device, with targets min-max scaled over those rows."""
    return Samples(
        ops=ops[rows],
        supplementary=None if supplementary is None else supplementary[rows],
        device=np.full(len(rows), device, dtype=np.int64),
        target=minmax(latency[rows]),
    )


def fit(
    network: nn.Module,
    parts: list[Samples],
    adjacency: np.ndarray,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    weight_decay: float = 1e-5,
) -> None:
    """Train ``network`` in place on per-device ``parts`` with the hinge loss, AdamW and a cosine schedule."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    adj = torch.from_numpy(adjacency)
    tensors = [
        (
            torch.from_numpy(p.ops),
            None if p.supplementary is None else torch.from_numpy(p.supplementary.astype(np.float32)),
            torch.from_numpy(p.device),
            torch.from_numpy(p.target.astype(np.float32)),
        )
        for p in parts
    ]
    steps_per_epoch = sum(-(-len(p.target) // batch_size) for p in parts)
    optimizer = torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs * steps_per_epoch))
    network.train()
    for _ in range(epochs):
        batches = []
        for k, (_, _, _, target) in enumerate(tensors):
            order = torch.from_numpy(rng.permutation(len(target)))
            batches += [(k, order[i : i + batch_size]) for i in range(0, len(target), batch_size)]
        for b in rng.permutation(len(batches)):
            k, index = batches[b]
            ops, supp, device, target = tensors[k]
            if len(index) < 2:
                continue
            scores = network(ops[index], adj, device[index], None if supp is None else supp[index])
            loss = pairwise_hinge(scores, target[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    network.eval()


@torch.no_grad()
def scores(
    network: nn.Module,
    ops: np.ndarray,
    adjacency: np.ndarray,
    supplementary: np.ndarray | None,
    device: int,
    batch_size: int = 8192,
) -> np.ndarray:
    """The network's scores of every row on device row ``device`` (evaluation mode, batched)."""
    network.eval()
    adj = torch.from_numpy(adjacency)
    out = []
    for i in range(0, len(ops), batch_size):
        o = torch.from_numpy(ops[i : i + batch_size])
        s = None if supplementary is None else torch.from_numpy(supplementary[i : i + batch_size].astype(np.float32))
        out.append(network(o, adj, torch.full((len(o),), device, dtype=torch.int64), s).numpy())
    return np.concatenate(out).astype(np.float64) if out else np.zeros(0)
