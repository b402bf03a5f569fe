"""A dataset at a glance: the device correlation heatmap beside each device's latency distribution.

People would rather look than read a 27x27 table. Drawn with matplotlib's Agg canvas (no display, no pyplot
state); devices are ordered by their leading correlation component, so alike devices sit together.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from latbench.datasets.correlation import MIN_COMMON_ARCHS, device_correlations
from latbench.datasets.errors import DatasetError
from latbench.datasets.model import Dataset
from latbench.errors import MissingDependency


def _figure_class() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependency("matplotlib", "datasets", "plotting a dataset") from None
    return Figure


def _order(srcc: np.ndarray) -> np.ndarray:
    """Devices sorted along the leading eigenvector of their centred correlations."""
    centred = srcc - srcc.mean(axis=0, keepdims=True)
    _, vectors = np.linalg.eigh(centred @ centred.T)
    return np.argsort(vectors[:, -1], kind="stable")


def _heatmap(fig: Any, ax: Any, srcc: np.ndarray, labels: list[str], n_archs: int) -> None:
    n = len(labels)
    image = ax.imshow(srcc, cmap="viridis", vmin=min(0.0, float(srcc.min())), vmax=1.0)
    ax.set_xticks(range(n), labels, rotation=90, fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    if n <= 12:
        for i in range(n):
            for j in range(n):
                ax.text(
                    j,
                    i,
                    f"{srcc[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if srcc[i, j] < 0.6 else "black",
                )
    ax.set_title(f"Spearman rank correlation ({n_archs} shared architectures)")
    fig.colorbar(image, ax=ax, shrink=0.8, label="SRCC")


def plot(ds: Dataset, out: str | Path, devices: Sequence[str] | None = None) -> Path:
    """Write a PNG of ``ds`` (or of ``devices``) to ``out``, replacing it atomically; return ``out``."""
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise DatasetError(f"the plot is a PNG: --out must end in .png, got {out.name!r}")
    if not out.parent.is_dir():
        raise DatasetError(f"cannot write {out}: directory {out.parent} does not exist")
    names = list(devices) if devices else ds.device_names
    measured = [ds.vector(d) for d in names]
    shared = int((~np.isnan(np.stack(measured))).all(axis=0).sum())
    corr = device_correlations(ds, names) if len(names) > 1 and shared >= MIN_COMMON_ARCHS else None
    order = _order(corr.srcc) if corr is not None else np.arange(len(names))
    labels = [names[i] for i in order]

    n = len(names)
    fig = _figure_class()(
        figsize=(max(11.0, 8 + 0.32 * n) if corr is not None else 7, 3 + 0.3 * n), layout="constrained"
    )
    if corr is not None:
        heat, dist = fig.subplots(1, 2, width_ratios=[1.25, 1])
        _heatmap(fig, heat, corr.srcc[np.ix_(order, order)], labels, corr.n_archs)
    else:
        dist = fig.subplots()
    values = [measured[i][~np.isnan(measured[i])] for i in order]
    dist.boxplot(values, orientation="horizontal", tick_labels=labels, whis=(1, 99), showfliers=False, widths=0.6)
    dist.invert_yaxis()
    dist.set_xscale("log")
    dist.tick_params(axis="y", labelsize=8)
    dist.set_xlabel("latency (ms, log); box: quartiles, whiskers: 1st-99th percentile")
    dist.set_title("Latency per device")
    dist.grid(axis="x", which="both", alpha=0.3)
    fig.suptitle(f"{ds.name}: {ds.space}, {n} devices, {len(ds.archs)} architectures")
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
