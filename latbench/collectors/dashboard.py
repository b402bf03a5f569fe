"""The dashboard: a read-only web UI at ``/`` (files in ``static/``) and the JSON it reads under ``/v1/admin/``.

The page itself holds no data and is public; every JSON endpoint needs the admin token, which the page keeps in
the tab's sessionStorage and sends as ``Authorization: Bearer``, as the CLI does. Charts are computed here (bins,
predictions) so the page only draws. Measured-vs-predicted latency uses a predictor placed for a device as
``<models dir>/<device name>.pt`` (``DATA_DIR/models`` under ``collector serve``); datasets and predictors come
from the collector's ``Catalog``, since the packages that own them build on the collector and it imports neither.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import Session

from latbench.collectors import campaigns, export
from latbench.collectors.adaptive import predictor_file
from latbench.collectors.context import LatencyModel
from latbench.collectors.models import AgentRow, CampaignArchRow, DeviceRow, JobRow, ResultRow
from latbench.collectors.routes import AdminToken, Ctx
from latbench.errors import NotFound
from latbench.protocol import API_PREFIX
from latbench.ranking import spearman
from latbench.resultview import from_export_row

log = logging.getLogger(__name__)
router = APIRouter()

STATIC = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
"""The files the page is made of; nothing else under ``static/`` is served."""
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'",
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
}
"""The page runs only its own scripts and styles (no inline code, no CDN); browsers revalidate it on each load."""
ADMIN = f"{API_PREFIX}/admin"


def _static(name: str) -> Response:
    content = resources.files("latbench.collectors").joinpath("static", name).read_bytes()
    return Response(content, media_type=STATIC[name], headers=PAGE_HEADERS)


@router.get("/", include_in_schema=False)
def page() -> Response:
    return _static("index.html")


@router.get("/static/{name}", include_in_schema=False)
def static(name: str) -> Response:
    if name not in STATIC:
        raise NotFound(f"no dashboard file {name!r}")
    return _static(name)


def _device(session: Session, name: str) -> DeviceRow:
    device = session.scalar(select(DeviceRow).where(DeviceRow.name == name))
    if device is None:
        raise NotFound(f"no device {name!r}")
    return device


def _done(campaign_id: str, *columns: Any) -> Select[Any]:
    """``columns`` of the finished jobs of a campaign, joined to their measurement, device and architecture."""
    return (
        select(*columns)
        .select_from(JobRow)
        .join(ResultRow, ResultRow.id == JobRow.result_id)
        .join(
            CampaignArchRow,
            and_(CampaignArchRow.campaign_id == JobRow.campaign_id, CampaignArchRow.position == JobRow.position),
        )
        .join(DeviceRow, DeviceRow.id == JobRow.device_id)
        .where(JobRow.campaign_id == campaign_id, JobRow.state == "done", ResultRow.median_ms.is_not(None))
        .order_by(DeviceRow.name, JobRow.position)
    )


def device_results(session: Session, campaign_id: str, device: DeviceRow) -> list[dict[str, Any]]:
    """One row per finished architecture of ``device`` in the campaign: its median latency and quality."""
    query = (
        _done(
            campaign_id,
            CampaignArchRow.arch,
            ResultRow.median_ms,
            ResultRow.cv,
            ResultRow.stable,
            ResultRow.measured_at,
        )
        .add_columns(AgentRow.name)
        .join(AgentRow, AgentRow.id == ResultRow.agent_id)
        .where(JobRow.device_id == device.id)
    )
    return [
        {"arch": arch, "latency_ms": median, "cv": cv, "stable": stable, "measured_at": measured, "agent": agent}
        for arch, median, cv, stable, measured, agent in session.execute(query)
    ]


def _median(values: np.ndarray) -> float:
    """The median, without the overflow of averaging the middle two near the largest float."""
    ordered = np.sort(values)
    below, above = ordered[(len(ordered) - 1) // 2], ordered[len(ordered) // 2]
    return float(below + (above - below) / 2)


def histogram(latencies: list[float], bins: int) -> dict[str, Any]:
    """Equal-width bins from the fastest to the slowest latency, with the summary figures a reader checks first.

    Latencies a few ulps apart (or one latency near the largest float) leave no room in floating point for
    ``bins`` distinct edges: they share one bin from the fastest to the slowest.
    """
    values = np.asarray(latencies, dtype=np.float64)
    try:
        counts, edges = np.histogram(values, bins=bins)
    except ValueError:  # "too many bins for data range"
        counts, edges = np.array([len(values)]), np.array([values.min(), values.max()])
    return {
        "n": len(values),
        "edges": edges.tolist(),
        "counts": counts.tolist(),
        "min_ms": float(values.min()),
        "median_ms": _median(values),
        "max_ms": float(values.max()),
    }


@router.get(f"{ADMIN}/campaigns/{{campaign_id}}/latency-histogram")
def latency_histogram(
    campaign_id: str, _: AdminToken, c: Ctx, bins: Annotated[int, Query(ge=1, le=200)] = 20
) -> dict[str, Any]:
    """Per device with finished results: the distribution of its median latencies in this campaign."""
    with c.store.read() as session:
        campaigns.get(session, campaign_id)
        by_device: dict[str, list[float]] = {}
        for name, median in session.execute(_done(campaign_id, DeviceRow.name, ResultRow.median_ms)):
            by_device.setdefault(name, []).append(median)
    devices = [{"device": name, **histogram(values, bins)} for name, values in by_device.items()]
    return {"campaign_id": campaign_id, "devices": devices}


@router.get(f"{ADMIN}/campaigns/{{campaign_id}}/devices/{{device}}/results")
def results_of_device(campaign_id: str, device: str, _: AdminToken, c: Ctx) -> list[dict[str, Any]]:
    """The finished results of one device in a campaign (architecture, median latency, CV, stability, agent)."""
    with c.store.read() as session:
        campaigns.get(session, campaign_id)
        return device_results(session, campaign_id, _device(session, device))


@router.get(f"{ADMIN}/campaigns/{{campaign_id}}/result-list")
def result_list(campaign_id: str, _: AdminToken, c: Ctx, n: Annotated[int, Query(ge=1, le=100)] = 8) -> dict[str, Any]:
    """The ``n`` slowest and the ``n`` most recently measured finished results of a campaign, over all devices,
    each with its id for ``/admin/results/{id}/summary``; ``total`` counts them all."""
    columns = (ResultRow.id, CampaignArchRow.arch, DeviceRow.name, ResultRow.median_ms, ResultRow.cv,
               ResultRow.stable, ResultRow.flags, ResultRow.measured_at, ResultRow.profile.is_not(None))  # fmt: skip
    names = ("result_id", "arch", "device", "latency_ms", "cv", "stable", "flags", "measured_at", "profiled")
    with c.store.read() as session:
        campaigns.get(session, campaign_id)
        done = _done(campaign_id, *columns).order_by(None)
        total = session.scalar(_done(campaign_id, func.count()).order_by(None))
        lists = {
            "slowest": done.order_by(ResultRow.median_ms.desc(), ResultRow.id).limit(n),
            "recent": done.order_by(ResultRow.measured_at.desc(), ResultRow.id).limit(n),
        }
        answer: dict[str, Any] = {"campaign_id": campaign_id, "total": total}
        for key, query in lists.items():
            answer[key] = [dict(zip(names, (*row[:-1], bool(row[-1])))) for row in session.execute(query)]
    return answer


@router.get(f"{ADMIN}/results/{{result_id}}/summary")
def result_summary(
    result_id: str, _: AdminToken, c: Ctx, top: Annotated[int, Query(ge=1, le=100)] = 10
) -> dict[str, Any]:
    """One stored result as ``latbench results show`` shows it (``latbench.resultview.ResultView.summary``)."""
    with c.store.read() as session:
        row = export.result(session, result_id)
    return from_export_row(row).summary(top)


class _Predictions:
    """Loaded predictors and their predictions, per model file; a replaced file (new mtime or size) reloads.

    Predictions are kept per architecture, so polling a running campaign predicts only the newly measured ones.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[Path, tuple[tuple[int, int], LatencyModel, dict[str, float]]] = {}

    def predict(self, load: Callable[[Path], LatencyModel], path: Path, space: str, archs: list[str]) -> list[float]:
        """Predicted latency (ms) of ``archs``, architectures of ``space``, by the model ``load`` reads at ``path``."""
        stat = path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            cached = self._models.get(path)
            if cached is None or cached[0] != stamp:
                cached = (stamp, load(path), {})
                self._models[path] = cached
            _, predictor, known = cached
            if predictor.space != space:
                raise ValueError(f"it predicts {predictor.space} architectures; this campaign measures {space}")
            missing = [a for a in dict.fromkeys(archs) if a not in known]
            if missing:
                values = np.asarray(predictor.predict(missing), dtype=np.float64).reshape(-1)
                if len(values) != len(missing):
                    raise ValueError(f"the predictor returned {len(values)} values for {len(missing)} architectures")
                known.update(zip(missing, values.tolist()))
            return [known[a] for a in archs]


_predictions = _Predictions()


def model_path(models_dir: Path | None, device: str) -> Path | None:
    """The predictor placed for ``device``, if there is one (device names are safe file names)."""
    if models_dir is None:
        return None
    path = models_dir / predictor_file(device)
    return path if path.is_file() else None


def srcc(a: list[float], b: list[float]) -> float | None:
    """Spearman's rank correlation (``latbench.ranking``); ``None``, which JSON can carry, where it has none."""
    value = spearman(a, b)
    return value if np.isfinite(value) else None


@router.get(f"{ADMIN}/campaigns/{{campaign_id}}/devices/{{device}}/predictions")
def predictions(campaign_id: str, device: str, _: AdminToken, c: Ctx) -> dict[str, Any]:
    """Measured against predicted latency of a device's finished architectures, with their SRCC.

    ``available`` is false, with a ``reason`` the page shows, when no predictor is placed for the device or the
    placed one cannot be used (not installed, unreadable file, another search space): a dashboard reports that
    rather than failing.
    """
    with c.store.read() as session:
        space = campaigns.get(session, campaign_id).space
        rows = device_results(session, campaign_id, _device(session, device))
    path = model_path(c.models_dir, device)
    answer: dict[str, Any] = {"device": device, "model": path.name if path else None, "available": False,
                              "reason": None, "points": [], "srcc": None}  # fmt: skip
    if path is None:
        return answer | {"reason": f"no predictor for this device (place one as models/{predictor_file(device)})"}
    archs, measured = [r["arch"] for r in rows], [r["latency_ms"] for r in rows]
    try:
        predicted = _predictions.predict(c.catalog.load_predictor, path, space, archs) if archs else []
    except Exception as exc:  # a placed file may be anything; the page says why it cannot be used
        log.warning("predictor %s cannot be used: %s", path, exc)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return answer | {"reason": f"cannot use the predictor {path.name}: {reason}"}
    points = [{"arch": a, "measured_ms": m, "predicted_ms": p} for a, m, p in zip(archs, measured, predicted)]
    return answer | {"available": True, "points": points, "srcc": srcc(measured, predicted)}


@router.get(f"{ADMIN}/campaigns/{{campaign_id}}/card")
def campaign_card(campaign_id: str, _: AdminToken, c: Ctx) -> dict[str, Any]:
    """The card of the dataset ``latbench dataset build --campaign`` would make from the results so far.

    ``card`` is null with a ``reason`` while there is nothing to build (no results yet, or setups that differ).
    """
    with c.store.read() as session:
        campaign = campaigns.get(session, campaign_id)
        rows = list(export.rows(session, campaign))
    if not rows:
        return {"card": None, "reason": "no finished results yet"}
    return c.catalog.campaign_card(campaign_id, campaign.name, rows)


@router.get(f"{ADMIN}/datasets")
def datasets(_: AdminToken, c: Ctx) -> dict[str, Any]:
    """The built-in datasets and those in the collector host's registry (``$LATBENCH_HOME/datasets``)."""
    return c.catalog.datasets()


@router.get(f"{ADMIN}/datasets/{{name}}")
def dataset_card(name: str, _: AdminToken, c: Ctx) -> dict[str, Any]:
    """One dataset's card: devices with coverage, setup and quality, provenance, content hash."""
    return c.catalog.dataset_card(name)
