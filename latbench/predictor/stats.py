"""Small numerical tools the predictors share: z-scores, ridge and NNLS fits (Spearman is ``latbench.ranking``).

numpy (and scipy's NNLS) only, so the linear baselines and the ensemble weights need no torch.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

ALPHAS = 10.0 ** np.arange(-3, 4)
"""Ridge penalties tried by leave-one-out."""


def folds_of(n: int, folds: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(held, kept)`` indices of each of ``min(folds, n)`` folds, sample ``i`` held in fold ``i mod folds``: one
    definition, so the calibration's folds are the transfer's out-of-fold ones."""
    folds = min(folds, n)
    index = np.arange(n)
    for k in range(folds):
        held = index[k::folds]
        yield held, np.setdiff1d(index, held)


def zscore_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations (1 where a column is constant), to z-score with later."""
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    return mean, np.where(std > 1e-12, std, 1.0)


def ridge_fit(x: np.ndarray, y: np.ndarray, alphas: np.ndarray = ALPHAS) -> tuple[np.ndarray, float]:
    """Ridge regression with an unpenalised intercept; the penalty is chosen by exact leave-one-out error.

    Returns ``(coef, intercept)`` with ``coef`` over ``x``'s columns. ``x`` should be z-scored beforehand.
    """
    x_mean, y_mean = x.mean(axis=0), y.mean()
    xc, yc = x - x_mean, y - y_mean
    n = len(y)
    best: tuple[float, np.ndarray] | None = None
    gram = xc.T @ xc
    for alpha in alphas:
        inv = np.linalg.solve(gram + alpha * np.eye(x.shape[1]), xc.T)
        hat = xc @ inv
        leverage = np.clip(np.diag(hat) + 1.0 / n, None, 1 - 1e-9)
        residual = (yc - hat @ yc) / (1.0 - leverage)
        error = float((residual**2).mean())
        if best is None or error < best[0]:
            best = (error, inv @ yc)
    assert best is not None
    coef = best[1]
    return coef, float(y_mean - x_mean @ coef)


def nnls_fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative least squares (Lawson-Hanson, scipy's implementation)."""
    from scipy.optimize import nnls

    return nnls(x, y)[0]
