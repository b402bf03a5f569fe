"""Small numerical tools the predictors share: ranks with ties, Spearman correlation, ridge and NNLS fits.

numpy (and scipy's NNLS) only, so the linear baselines and the ensemble weights need no torch.
"""

from __future__ import annotations

import numpy as np

ALPHAS = 10.0 ** np.arange(-3, 4)
"""Ridge penalties tried by leave-one-out."""


def rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (as ``scipy.stats.rankdata``)."""
    x = np.asarray(x, dtype=np.float64)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return ((ends - counts + 1 + ends) / 2.0)[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation; 0 where either side is constant."""
    ra, rb = rankdata(a), rankdata(b)
    ra -= ra.mean()
    rb -= rb.mean()
    denom = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / denom) if denom > 0 else 0.0


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


def leave_one_out_srcc(fit_predict: object, n: int, y: np.ndarray) -> float:
    """Spearman correlation of leave-one-out predictions: ``fit_predict(train_rows, test_rows)`` -> predictions."""
    predictions = np.empty(n)
    for i in range(n):
        keep = np.arange(n) != i
        predictions[i] = fit_predict(np.flatnonzero(keep), np.array([i]))[0]  # type: ignore[operator]
    return spearman(predictions, y)
