"""Adaptive campaigns: after each batch of a device's results, ask the acquisition what the device measures next,
queue it, and stop the device once its predictor is accurate enough or its budget is spent.

The acquisition transfers a predictor, which lives in packages that build on the collector's results, so the
collector does not import it: whoever starts the collector hands it an ``Acquirer``
(``latbench.catalog.PredictorAcquirer``). It runs in a background thread of the collector's first process,
never on a request: a step takes seconds. Every device starts with the campaign's architectures (the first
batch, created by ``leasing`` as for any campaign); the architectures the acquisition adds later are appended to
the campaign's, and only the device that asked for them gets their jobs. A stopped device's predictor is saved
among the collector's models as ``<device>.pt``, where the dashboard finds it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol, cast

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from latbench.artifacts import OPSET, ArtifactKey
from latbench.collectors import artifact_store
from latbench.collectors.db import Store, is_outage, new_id, outage_reason
from latbench.collectors.models import (
    AdaptiveDeviceRow,
    CampaignArchRow,
    CampaignDeviceRow,
    CampaignRow,
    DeviceRow,
    JobRow,
    ResultRow,
)
from latbench.protocol import (
    AcquisitionStop,
    AdaptiveDevice,
    AdaptivePlan,
    AdaptiveStop,
    LearningPoint,
)

log = logging.getLogger(__name__)
MODEL_SUFFIX = ".pt"


def predictor_file(device: str) -> str:
    """The name of a device's predictor among the collector's models: where an adaptive campaign saves it, the
    dashboard reads it, and a rename moves it."""
    return f"{device}{MODEL_SUFFIX}"


MIN_RESULTS = 4
"""Results a device needs before its first step (cross-validation keeps 3 per fold)."""


class SavableModel(Protocol):
    def save(self, path: Path) -> Any: ...


@dataclass(frozen=True)
class AcquiredStep:
    """What the acquisition made of a device's results: the estimate (``checks`` of the results random check
    results), the model it describes, and the next architectures (none once ``stop`` says why, with ``caveat``
    where the estimate is less sure than its spread says)."""

    srcc: float
    srcc_std: float
    model: SavableModel
    next: list[str]
    stop: AcquisitionStop | None
    checks: int = 0
    caveat: str | None = None


class Acquirer(Protocol):
    """Picks a device's next architectures from its results (``latbench.predictor.adaptive``)."""

    def step(
        self, space: str, device: str, archs: Sequence[str], latency_ms: Sequence[float], exclude: Sequence[str],
        plan: AdaptivePlan, budget: int, setup: Mapping[str, Any] | None = None, fingerprint: str | None = None,
    ) -> AcquiredStep:  # fmt: skip
        """The step after ``archs`` measured ``latency_ms`` (``exclude``: failed, never to pick again); at most
        ``budget`` results in all. ``setup`` says how they were measured (runtime, provider, precision, batch,
        threads, resolution, classes), for the model to keep (``latbench search --verify`` measures the same way);
        ``fingerprint`` is the device's hardware, for the model to say where its samples come from."""
        ...


@dataclass(frozen=True)
class _Device:
    campaign: CampaignRow
    device_id: str
    name: str
    fingerprint: str
    archs: list[str]
    latency_ms: list[float]
    failed: list[str]
    seen: int


def _setup(campaign: CampaignRow) -> dict[str, Any]:
    """How the campaign measures: what its device's model keeps for whoever measures against its predictions."""
    from latbench.collectors.campaigns import precision

    return {"runtime": campaign.runtime, "provider": campaign.provider, "precision": precision(campaign),
            "batch": campaign.batch, "threads": campaign.threads, "resolution": campaign.resolution,
            "classes": campaign.classes}  # fmt: skip


def _due(session: Session) -> list[_Device]:
    """Devices of adaptive campaigns whose every job has finished since their last step, with their results; a
    cancelled campaign is stepped no more (its new picks would never be leased), a paused one once resumed (a
    pause spends nothing, the acquisition's seconds included)."""
    due = []
    adaptive = select(CampaignRow).where(
        CampaignRow.adaptive.is_not(None), CampaignRow.cancelled_at.is_(None), CampaignRow.paused_at.is_(None)
    )
    campaigns = session.scalars(adaptive).all()
    for campaign in campaigns:
        stopped = set(
            session.scalars(
                select(AdaptiveDeviceRow.device_id).where(
                    AdaptiveDeviceRow.campaign_id == campaign.id, AdaptiveDeviceRow.state == "stopped"
                )
            )
        )
        seen = dict(
            session.execute(
                select(AdaptiveDeviceRow.device_id, AdaptiveDeviceRow.seen).where(
                    AdaptiveDeviceRow.campaign_id == campaign.id
                )
            ).all()
        )
        members = session.execute(
            select(CampaignDeviceRow.device_id, DeviceRow.name, DeviceRow.fingerprint, CampaignDeviceRow.created)
            .join(DeviceRow, DeviceRow.id == CampaignDeviceRow.device_id)
            .where(CampaignDeviceRow.campaign_id == campaign.id)
        ).all()
        for device_id, name, fingerprint, created in members:
            if device_id in stopped or created < campaign.samples:
                continue
            jobs = session.execute(
                select(CampaignArchRow.arch, JobRow.state, ResultRow.median_ms)
                .join(
                    CampaignArchRow,
                    (CampaignArchRow.campaign_id == JobRow.campaign_id) & (CampaignArchRow.position == JobRow.position),
                )
                .outerjoin(ResultRow, ResultRow.id == JobRow.result_id)
                .where(JobRow.campaign_id == campaign.id, JobRow.device_id == device_id)
                .order_by(JobRow.position)
            ).all()
            if any(state not in ("done", "failed") for _, state, _ in jobs) or seen.get(device_id) == len(jobs):
                continue
            done = [(arch, ms) for arch, state, ms in jobs if state == "done" and ms is not None and ms > 0]
            failed = [arch for arch, state, _ in jobs if state == "failed"]
            due.append(_Device(campaign, device_id, name, fingerprint, [a for a, _ in done], [m for _, m in done],
                               failed, len(jobs)))  # fmt: skip
    return due


def _record(session: Session, device: _Device, now: datetime, **values: Any) -> None:
    row = session.get(AdaptiveDeviceRow, (device.campaign.id, device.device_id))
    if row is None:
        row = AdaptiveDeviceRow(campaign_id=device.campaign.id, device_id=device.device_id, state="measuring",
                                seen=0, curve=[], updated_at=now)  # fmt: skip
        session.add(row)
    point = values.pop("point", None)
    if point is not None:
        row.curve = [*row.curve, point]
    for key, value in values.items():
        setattr(row, key, value)
    row.seen, row.updated_at = device.seen, now


def _queue(session: Session, device: _Device, archs: list[str], now: datetime) -> None:
    """Append ``archs`` to the campaign's architectures where new, and queue them on the device."""
    campaign = device.campaign
    known = dict(
        session.execute(
            select(CampaignArchRow.arch, CampaignArchRow.position).where(CampaignArchRow.campaign_id == campaign.id)
        ).all()
    )
    end = session.scalar(select(func.max(CampaignArchRow.position)).where(CampaignArchRow.campaign_id == campaign.id))
    keys = {a: ArtifactKey(campaign.space, a, campaign.batch, campaign.resolution, campaign.classes, OPSET, 0)
            for a in archs}  # fmt: skip
    artifact_store.request(session, keys.values(), now, campaign.format)
    new = [a for a in archs if a not in known]
    for offset, arch in enumerate(new, start=(end or 0) + 1):
        known[arch] = offset
    if new:
        session.execute(
            insert(CampaignArchRow),
            [{"campaign_id": campaign.id, "position": known[a], "arch": a,
              "artifact_digest": keys[a].digest(campaign.format)} for a in new],
        )  # fmt: skip
    session.execute(
        insert(JobRow),
        [{"id": new_id(), "campaign_id": campaign.id, "device_id": device.device_id,
          "position": known[a], "state": "queued", "leases": 0, "errors": 0, "expirations": 0} for a in archs],
    )  # fmt: skip


class AdaptiveWorker:
    """Steps the due devices of adaptive campaigns in a background thread until stopped."""

    def __init__(
        self, store: Store, acquirer: Acquirer, models_dir: Path, clock: Callable[[], datetime],
        wake_builder: Callable[[], None], every_s: float = 1.0,
    ) -> None:  # fmt: skip
        self.store, self.acquirer, self.models_dir = store, acquirer, models_dir
        self.clock, self.wake_builder, self.every_s = clock, wake_builder, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="adaptive", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        """Step every ``every_s`` until stopped. A store outage is logged once, as one line, and its end once:
        the worker retries every second, and a traceback a second would bury the log for as long as it lasts."""
        unreachable = False
        while not self._stop.wait(self.every_s):
            try:
                self.run_once()
            except Exception as exc:
                if not is_outage(exc):
                    log.exception("adaptive campaign step failed")
                elif not unreachable:
                    log.warning("adaptive campaigns wait: the store is unreachable (%s)", outage_reason(exc))
                unreachable = unreachable or is_outage(exc)
                continue
            if unreachable:
                log.info("adaptive campaigns go on: the store is reachable again")
                unreachable = False

    def run_once(self) -> int:
        """Step every due device; return how many were stepped."""
        with self.store.read() as session:
            due = _due(session)
        for device in due:
            self.step(device)
        return len(due)

    def step(self, device: _Device) -> None:
        plan = AdaptivePlan(**device.campaign.adaptive or {})
        budget = plan.budget - len(device.failed)
        if len(device.archs) < MIN_RESULTS:
            stop = "budget" if device.seen >= plan.budget else "failed"
            error = f"{len(device.archs)} of {device.seen} jobs gave a result; a predictor needs {MIN_RESULTS}"
            with self.store.write() as session:
                _record(session, device, self.clock(), state="stopped", stop=stop, error=error)
            return
        model = None
        try:
            step = self.acquirer.step(device.campaign.space, device.name, device.archs, device.latency_ms,
                                      device.failed, plan, budget, _setup(device.campaign),
                                      device.fingerprint)  # fmt: skip
            if step.stop is not None:
                model = predictor_file(device.name)
                self.models_dir.mkdir(parents=True, exist_ok=True)
                partial = self.models_dir / f".{model}.partial"
                step.model.save(partial)
                partial.replace(self.models_dir / model)
        except Exception as exc:  # the acquisition is not the collector's code; its failure stops this device only
            log.warning("adaptive step for %s failed: %s", device.name, exc)
            with self.store.write() as session:
                _record(session, device, self.clock(), state="stopped", stop="failed", error=str(exc) or repr(exc))
            return
        point = LearningPoint(results=len(device.archs), srcc=step.srcc, srcc_std=step.srcc_std,
                              checks=step.checks).model_dump()  # fmt: skip
        with self.store.write() as session:
            now = self.clock()
            if step.stop is None:
                _queue(session, device, step.next, now)
                _record(session, device, now, point=point)
            else:
                _record(session, device, now, point=point, state="stopped", stop=step.stop, model=model,
                        caveat=step.caveat)  # fmt: skip
        if step.stop is None:
            self.wake_builder()


def devices(session: Session, campaign_id: str) -> list[AdaptiveDevice]:
    """Each device's learning curve and stop of an adaptive campaign, by device name."""
    rows = session.execute(
        select(AdaptiveDeviceRow, DeviceRow.name)
        .join(DeviceRow, DeviceRow.id == AdaptiveDeviceRow.device_id)
        .where(AdaptiveDeviceRow.campaign_id == campaign_id)
        .order_by(DeviceRow.name)
    ).all()
    return [
        AdaptiveDevice(
            device=name,
            state=cast(Literal["measuring", "stopped"], row.state),
            stop=cast("AdaptiveStop | None", row.stop),
            curve=[LearningPoint(**p) for p in row.curve],
            model=row.model,
            error=row.error,
            caveat=row.caveat,
        )
        for row, name in rows
    ]
