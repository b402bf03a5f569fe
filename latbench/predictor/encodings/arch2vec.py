"""arch2vec: an unsupervised variational graph autoencoder whose latent space embeds architectures.

After Yan et al., "Does Unsupervised Architecture Representation Learning Help Neural Architecture Search?"
(NeurIPS 2020), small: a GIN encoder over the graph encoding (``space.encode``: adjacency + one-hot ops) gives
each node a Gaussian ``q(z_i) = N(mu_i, sigma_i)``; an inner-product decoder ``sigmoid(z_i . z_j + b)`` rebuilds
the adjacency and a linear decoder ``softmax(W z_i)`` the operations. The architecture's embedding is the mean
of its nodes' ``mu``: deterministic, ``DIM`` numbers.

GIN layer: ``h' = MLP((1 + eps) h + A_s h)`` with ``A_s = A + A^T`` (messages both ways along each edge).
Nodes are numbered in topological order, so the decoder scores only ``i < j`` and direction is implied.
Training sees every architecture of the table (unsupervised: no latency is used), plus ``EXTRA_SAMPLED`` seeded
random architectures where the space is too large to list (FBNet's 5,000 are a tiny sample of its space).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from latbench.predictor.encodings.store import Encodings, check
from latbench.predictor.encodings.threads import one_thread
from latbench.progress import Progress, notify
from latbench.spaces import get_space

CODE_VERSION = 1
DIM = 16
HIDDEN = 64
LAYERS = 3
EPOCHS = 20
BATCH = 256
LR = 3e-3
BETA = 0.005
"""Weight of the KL term: small, as in arch2vec, so the latent space keeps the reconstruction detail."""
EXTRA_SAMPLED = 10_000
HELD_OUT = 0.1


class GINLayer(nn.Module):
    """``h' = MLP((1 + eps) h + A_s h)``, the graph isomorphism network's update (Xu et al. 2019)."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.eps = nn.Parameter(torch.zeros(()))
        self.mlp = nn.Sequential(nn.Linear(d_in, d_out), nn.ReLU(), nn.Linear(d_out, d_out))

    def forward(self, h: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.mlp((1 + self.eps) * h + adj @ h))


class Encoder(nn.Module):
    """GIN layers, then per-node ``mu`` and ``log sigma^2``; ``embed`` averages ``mu`` over nodes."""

    def __init__(self, vocabulary: int, hidden: int = HIDDEN, dim: int = DIM, layers: int = LAYERS) -> None:
        super().__init__()
        sizes = [vocabulary] + [hidden] * layers
        self.layers = nn.ModuleList(GINLayer(a, b) for a, b in itertools.pairwise(sizes))
        self.mu = nn.Linear(hidden, dim)
        self.logvar = nn.Linear(hidden, dim)

    def forward(self, ops: torch.Tensor, adj: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sym = adj + adj.transpose(1, 2)
        h = ops
        for layer in self.layers:
            h = layer(h, sym)
        return self.mu(h), self.logvar(h)

    def embed(self, ops: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        return self.forward(ops, adj)[0].mean(dim=1)


class Decoder(nn.Module):
    """Adjacency logits ``z_i . z_j + b`` and operation logits ``W z_i``.

    The scalar ``b`` lets sparse graphs (FBNet's chain: 23 edges of 276 pairs) start from "no edge".
    """

    def __init__(self, vocabulary: int, dim: int = DIM) -> None:
        super().__init__()
        self.ops = nn.Linear(dim, vocabulary)
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return z @ z.transpose(1, 2) + self.bias, self.ops(z)


def graphs(space: str, archs: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """One-hot ops ``[n, nodes, vocabulary]`` and adjacency ``[n, nodes, nodes]`` (float32) of ``archs``."""
    s = get_space(space)
    encoded = [s.encode(a) for a in archs]
    ops = torch.from_numpy(np.stack([g.one_hot() for g in encoded]))
    adj = torch.from_numpy(np.stack([g.adjacency for g in encoded]).astype(np.float32))
    return ops, adj


def reconstruction(
    encoder: Encoder, decoder: Decoder, ops: torch.Tensor, adj: torch.Tensor, sample: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Adjacency logits on ``i < j``, their targets, op logits and the KL term of a batch."""
    mu, logvar = encoder(ops, adj)
    z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if sample else mu
    adj_logits, op_logits = decoder(z)
    upper = torch.triu(torch.ones_like(adj[0], dtype=torch.bool), diagonal=1)
    kl = -0.5 * torch.mean(torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1))
    return adj_logits[:, upper], adj[:, upper], op_logits, kl


def accuracy(encoder: Encoder, decoder: Decoder, ops: torch.Tensor, adj: torch.Tensor) -> dict[str, float]:
    """Reconstruction from ``mu``: the fraction of ``i < j`` adjacency entries and of ops decoded right."""
    with torch.no_grad():
        adj_logits, adj_target, op_logits, _ = reconstruction(encoder, decoder, ops, adj)
    return {
        "adjacency_accuracy": float(((adj_logits > 0).float() == adj_target).float().mean()),
        "ops_accuracy": float((op_logits.argmax(-1) == ops.argmax(-1)).float().mean()),
    }


def fit(
    ops: torch.Tensor,
    adj: torch.Tensor,
    seed: int,
    epochs: int = EPOCHS,
    progress: Progress | None = None,
    batch_size: int = BATCH,
) -> tuple[Encoder, Decoder]:
    """Train an autoencoder on the graphs ``(ops, adj)`` with Adam; the same seed gives the same weights."""
    with one_thread(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder, decoder = Encoder(ops.shape[-1]), Decoder(ops.shape[-1])
        optimizer = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=LR)
        generator = torch.Generator().manual_seed(seed)
        steps = epochs * -(-len(ops) // batch_size)
        notify(progress, "arch2vec", 0, steps)
        step = 0
        for _ in range(epochs):
            for idx in torch.randperm(len(ops), generator=generator).split(batch_size):
                adj_logits, adj_target, op_logits, kl = reconstruction(
                    encoder, decoder, ops[idx], adj[idx], sample=True
                )
                loss = (
                    nn.functional.binary_cross_entropy_with_logits(adj_logits, adj_target)
                    + nn.functional.cross_entropy(op_logits.flatten(0, 1), ops[idx].argmax(-1).flatten())
                    + BETA * kl
                )
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                step += 1
                notify(progress, "arch2vec", step, steps)
    return encoder.eval(), decoder.eval()


def _meta(
    space: str, seed: int, epochs: int, batch_size: int, n_train: int, scores: dict[str, float]
) -> dict[str, Any]:
    return {
        "space": space,
        "kind": "arch2vec",
        "seed": seed,
        "code_version": CODE_VERSION,
        "dim": DIM,
        "hidden": HIDDEN,
        "layers": LAYERS,
        "epochs": epochs,
        "batch_size": batch_size,
        "train_archs": n_train,
        "held_out": scores,
        "torch": torch.__version__,
    }


def train_arch2vec(
    space: str,
    archs: Sequence[str] | None = None,
    seed: int = 0,
    epochs: int = EPOCHS,
    progress: Progress | None = None,
    batch_size: int = BATCH,
) -> Encodings:
    """Train on ``archs`` (default: the shipped list; spaces too large to list add random ones) and embed them.

    The reconstruction accuracy of a seeded ``HELD_OUT`` fraction, left out of training, is recorded in the
    table's ``meta["held_out"]``; the weights in the table are those of that model, trained on the rest.
    """
    space, _ = check(space, "arch2vec")
    if archs is None:
        from latbench.predictor.encodings.archs import default_archs

        archs = default_archs(space)
    s = get_space(space)
    canonical = tuple(s.canonical_many(archs))
    pool = list(canonical)
    if s.archs() is None:
        pool = list(dict.fromkeys(pool + s.sample(EXTRA_SAMPLED, seed=seed + 1)))
    ops, adj = graphs(space, pool)
    order = np.random.default_rng(seed).permutation(len(pool))
    cut = int(len(pool) * HELD_OUT)
    held, train = torch.from_numpy(order[:cut]), torch.from_numpy(order[cut:])
    encoder, decoder = fit(ops[train], adj[train], seed, epochs, progress, batch_size)
    scores = accuracy(encoder, decoder, ops[held], adj[held])
    state = {k: v.detach().numpy().copy() for k, v in encoder.state_dict().items()}
    meta = _meta(space, seed, epochs, batch_size, len(train), scores)
    return embed(space, canonical, state, meta)


def load_encoder(state: Mapping[str, np.ndarray], meta: Mapping[str, Any], vocabulary: int) -> Encoder:
    encoder = Encoder(vocabulary, hidden=meta["hidden"], dim=meta["dim"], layers=meta["layers"])
    encoder.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()})
    return encoder.eval()


def embed(
    space: str, archs: Sequence[str], state: Mapping[str, np.ndarray], meta: Mapping[str, Any], batch: int = 4096
) -> Encodings:
    """The embeddings of ``archs`` by the encoder whose weights are ``state`` (as stored in a table)."""
    s = get_space(space)
    canonical = tuple(s.canonical_many(archs))
    encoder = load_encoder(state, meta, len(s.vocabulary))
    rows = []
    with one_thread(), torch.no_grad():
        for start in range(0, len(canonical), batch):
            ops, adj = graphs(space, canonical[start : start + batch])
            rows.append(encoder.embed(ops, adj).numpy())
    values = np.concatenate(rows) if rows else np.zeros((0, meta["dim"]), dtype=np.float32)
    names = tuple(f"arch2vec_{i}" for i in range(meta["dim"]))
    return Encodings(space, "arch2vec", names, canonical, values.astype(np.float32), dict(meta), dict(state))
