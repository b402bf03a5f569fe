"""Training targets and loss: per-device min-max scaling and NASFLAT's pairwise hinge ranking loss."""

from __future__ import annotations

import numpy as np
import torch

MARGIN = 0.1


def minmax(values: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] (a constant vector becomes zeros), so every device weighs the same in training."""
    low, span = values.min(), np.ptp(values)
    return (values - low) / span if span > 0 else np.zeros_like(values)


def pairwise_hinge(scores: torch.Tensor, targets: torch.Tensor, margin: float = MARGIN) -> torch.Tensor:
    """Mean over ordered pairs ``(i, j)`` with ``t_i > t_j`` of ``max(0, margin - (s_i - s_j))``.

    Only the order matters: a predictor that ranks every pair right by at least ``margin`` has zero loss.
    """
    diff_s = scores.unsqueeze(1) - scores.unsqueeze(0)
    above = targets.unsqueeze(1) > targets.unsqueeze(0)
    if not bool(above.any()):
        return scores.sum() * 0.0
    return torch.relu(margin - diff_s[above]).mean()
