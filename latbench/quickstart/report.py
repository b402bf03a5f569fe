"""The quickstart's HTML report: one self-contained file (plots inlined as PNG data URIs, no scripts, no CDN)."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from latbench.quickstart.evaluate import Evaluation

_CSS = """
body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em}table{border-collapse:collapse}
td,th{border-bottom:1px solid #ddd;padding:.3em .8em;text-align:left}td.n{text-align:right}
img{max-width:100%;border:1px solid #eee}.muted{color:#666}
.warning{border:1px solid #d9a400;background:#fff8e1;padding:.6em 1em;margin:1em 0}
"""


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _plots(
    transfer: Sequence[str],
    holdout: Sequence[str],
    measured: dict[str, float],
    predicted_holdout: np.ndarray,
    predicted_transfer: np.ndarray,
    evaluation: Evaluation,
    device: str,
) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    figures = []
    fig, ax = plt.subplots(figsize=(5.5, 5))
    y_hold = np.array([measured[a] for a in holdout])
    y_tr = np.array([measured[a] for a in transfer])
    ax.scatter(y_hold, predicted_holdout, s=14, alpha=0.75, label=f"held out ({len(holdout)})")
    ax.scatter(y_tr, predicted_transfer, s=22, marker="x", color="C3", label=f"transfer samples ({len(transfer)})")
    lo = float(min(y_hold.min(), y_tr.min(), np.min(predicted_holdout)))
    hi = float(max(y_hold.max(), y_tr.max(), np.max(predicted_holdout)))
    ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8)
    ax.set(xscale="log", yscale="log", xlabel="measured latency (ms)", ylabel="predicted latency (ms)")
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(plain)
        axis.set_minor_formatter(plain)
    ax.set_title(f"{device}: SRCC {evaluation.predictor_srcc:.3f} on held-out architectures")
    ax.legend()
    figures.append(("Measured vs predicted latency", _png(fig)))
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.5))
    values = np.array(list(measured.values()))
    ax.hist(values, bins=min(40, max(10, len(values) // 3)), color="C0")
    ax.set(xlabel="median latency (ms)", ylabel="architectures", title=f"Latency distribution on {device}")
    figures.append(("Latency distribution", _png(fig)))
    plt.close(fig)

    corr = sorted(((d, v) for d, v in evaluation.public_srcc.items() if np.isfinite(v)), key=lambda t: t[1])
    if corr:
        fig, ax = plt.subplots(figsize=(6, max(3, 0.22 * len(corr))))
        ax.barh([d for d, _ in corr], [v for _, v in corr], color="C2")
        ax.set(xlabel="SRCC with this machine (all measured architectures)", xlim=(min(0, corr[0][1]), 1))
        ax.set_title("Correlation with the public devices")
        figures.append(("Device correlation with the public devices", _png(fig)))
        plt.close(fig)
    return figures


def write_report(
    path: Path,
    *,
    space: str,
    device: str,
    transfer: Sequence[str],
    holdout: Sequence[str],
    measured: dict[str, float],
    predicted_holdout: np.ndarray,
    predicted_transfer: np.ndarray,
    evaluation: Evaluation,
    timings: dict[str, float],
    outputs: dict[str, str],
    stability: str | None = None,
    left_out: int = 0,
) -> Path:
    e = html.escape
    figures = _plots(transfer, holdout, measured, predicted_holdout, predicted_transfer, evaluation, device)
    rows = [
        ("Transferred predictor", evaluation.predictor_srcc),
        ("FLOPs", evaluation.flops_srcc),
        (f"Best public device ({evaluation.best_public_device})", evaluation.best_public_srcc),
    ]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>latbench quickstart: {e(device)}</title><style>{_CSS}</style></head><body>",
        f"<h1>latbench quickstart: a latency predictor for {e(device)}</h1>",
        f"<p class='muted'>Search space {e(space)}; {len(transfer)} architectures measured to transfer the "
        f"shipped predictor, {len(holdout)} more held out to judge it.</p>",
        *_warning(stability, left_out),
        "<h2>Rank correlation (SRCC) on the held-out architectures</h2>",
        "<table><tr><th>ranking by</th><th>SRCC</th></tr>",
        *(f"<tr><td>{e(name)}</td><td class='n'>{value:.3f}</td></tr>" for name, value in rows),
        "</table>",
        *(f"<h2>{e(title)}</h2><img alt='{e(title)}' src='{uri}'>" for title, uri in figures),
        "<h2>Time per step</h2><table><tr><th>step</th><th>seconds</th></tr>",
        *(f"<tr><td>{e(step)}</td><td class='n'>{sec:.1f}</td></tr>" for step, sec in timings.items()),
        "</table><h2>Files</h2><table>",
        *(f"<tr><td>{e(k)}</td><td><code>{e(v)}</code></td></tr>" for k, v in outputs.items()),
        "</table></body></html>",
    ]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(parts), encoding="utf-8")
    tmp.replace(path)
    return path


def _warning(stability: str | None, left_out: int) -> list[str]:
    """The box above the SRCC table that says the figures rest on (or left out) unstable results."""
    if not stability:
        return []
    used = (
        f" The {left_out} unstable results were left out of the transfer and the evaluation."
        if left_out
        else " They were used (--include-unstable): the figures below may not hold on an idle machine."
    )
    return [f"<div class='warning'><strong>Unstable results.</strong> {html.escape(stability + used)}</div>"]
