"""Measure a search's finalists for real, so what it picked is judged by the hardware and not the predictor.

Locally through ``latbench.measure``, or on a collector's device through a campaign of exactly those
architectures (the device's agents measure them; this waits for the campaign and reads its results back).
Either way at the setup the predictor's samples were measured at (``latbench.predictor.setups``): a latency
predicted for batch 8 says nothing of one measured at batch 1. ``verification_setup`` works out that setup
from the model's record and what the user gives, with a warning for each thing assumed or overridden.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import fields, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from latbench.agents.measure import TimingSettings
from latbench.errors import LatbenchError
from latbench.predictor.setups import MeasurementSetup
from latbench.progress import Progress, notify

if TYPE_CHECKING:
    from latbench.client import CollectorClient

DEFAULTS = MeasurementSetup(runtime="onnxruntime", provider="cpu", precision="fp32", batch=1, threads=1)
"""What ``latbench measure`` and a campaign measure at unless told otherwise; resolution and classes default to
the space's own."""
SPACE_DEFAULT = "the space's default"
PROGRESS_EVERY_S = 30.0
"""While waiting for a campaign, how often to say where it stands when nothing changed."""


def verification_setup(
    recorded: MeasurementSetup | None, given: MeasurementSetup, model: str
) -> tuple[MeasurementSetup, list[str]]:
    """The setup to measure ``model``'s predictions at, and warnings for a person.

    Each field is what the user ``given`` it, else what the model ``recorded``, else ``DEFAULTS``' (resolution
    and classes: None, the space's default). A warning names each given field that differs from the recorded
    one, and what is assumed where the model records nothing (a file from before the record) or not that field.
    """
    known = recorded or MeasurementSetup()
    chosen: dict[str, object] = {}
    assumed: list[str] = []
    warnings: list[str] = []
    for field in fields(MeasurementSetup):
        name = field.name
        mine, theirs, default = getattr(given, name), getattr(known, name), getattr(DEFAULTS, name)
        if mine is not None:
            chosen[name] = mine
            if theirs is not None and mine != theirs:
                warnings.append(
                    f"--{name} {mine} differs from the {name} {theirs} that {model}'s samples were measured at: its "
                    f"predictions are for {name} {theirs}, so measured and predicted latencies do not compare"
                )
        elif theirs is not None:
            chosen[name] = theirs
        else:
            chosen[name] = default
            assumed.append(f"{name} {SPACE_DEFAULT if default is None else default}")
    if assumed:
        what = ", ".join(assumed)
        if recorded is None:
            warnings.append(
                f"{model} does not record how its samples were measured (transferred before latbench kept it): "
                f"verifying at {what}; if they were measured otherwise, say so (--batch, --runtime, --precision, "
                "--threads, ...) or transfer the model again"
            )
        else:
            warnings.append(f"{model} does not record its samples' {', '.join(a.split()[0] for a in assumed)}: "
                            f"assuming {what}")  # fmt: skip
    return MeasurementSetup(**chosen), warnings  # type: ignore[arg-type]


def _complete(setup: MeasurementSetup) -> MeasurementSetup:
    """``setup`` with ``DEFAULTS`` where it says nothing."""
    return replace(DEFAULTS, **setup.as_info())


def measure_locally(
    space: str,
    archs: Sequence[str],
    setup: MeasurementSetup = DEFAULTS,
    settings: TimingSettings | None = None,
    progress: Progress | None = None,
) -> dict[str, float]:
    """Median latency (ms) of each architecture on this machine, measured at ``setup``."""
    from latbench.local import measure

    s = _complete(setup)
    rows = measure(
        space,
        list(archs),
        settings=settings,
        runtime=str(s.runtime),
        provider=str(s.provider),
        precision=str(s.precision),
        batch=int(s.batch or 1),
        threads=int(s.threads or 1),
        resolution=s.resolution,
        classes=s.classes,
        progress=progress,
    )
    return {str(r["arch"]): float(r["latency_ms"]) for r in rows}  # type: ignore[arg-type]


def check_device(collector: str, token: str | None, device: str, runtime: str) -> None:
    """Refuse at once to verify on ``device`` when no campaign there could finish: the collector knows no such
    device, none of its agents was seen recently (the collector's ``online``), or they do not offer ``runtime``."""
    from latbench.client import CollectorClient

    with CollectorClient(collector, token) as client:
        devices = client.devices()
        url = client.url
    found = next((d for d in devices if d.name == device), None)
    see = "see `latbench devices`, and name the device to verify on with --device"
    if found is None:
        known = ", ".join(d.name for d in devices[:10]) or "none yet"
        raise LatbenchError(f"the collector at {url} has no device {device!r} (it knows: {known}); {see}")
    if not found.online:
        last = found.last_seen if found.last_seen.tzinfo else found.last_seen.replace(tzinfo=timezone.utc)
        ago = int((datetime.now(timezone.utc) - last).total_seconds())
        raise LatbenchError(
            f"no agent of device {device!r} was seen recently (last seen {ago} s ago), so nothing would measure the "
            f"finalists: start one of its agents ({', '.join(found.agents) or 'none enrolled'}), or {see}"
        )
    if runtime not in found.runtimes:
        offered = ", ".join(found.runtimes) or "none"
        raise LatbenchError(f"the agents of device {device!r} offer runtime(s) {offered}, not {runtime}; {see}")


def measure_by_campaign(
    collector: str,
    token: str | None,
    space: str,
    archs: Sequence[str],
    device: str,
    setup: MeasurementSetup = DEFAULTS,
    timeout_s: float = 3600.0,
    progress: Progress | None = None,
) -> dict[str, float]:
    """Median latency (ms) of each architecture on ``device``, measured at ``setup`` by its agents through a
    campaign. ``progress`` hears stage ``campaign``: the campaign created, then its counts as they change (and
    every ``PROGRESS_EVERY_S`` while they do not). On a timeout or an interrupt the campaign is cancelled, so
    no agent measures for a search that has stopped waiting."""
    from latbench.client import CollectorClient
    from latbench.protocol import CampaignCreate

    s = _complete(setup)
    with CollectorClient(collector, token) as client:
        campaign_id = client.create_campaign(
            CampaignCreate(
                space=space,
                archs=list(archs),
                runtime=str(s.runtime),
                provider=str(s.provider),
                precision=s.precision,  # type: ignore[arg-type]  # CampaignCreate checks it
                batch=int(s.batch or 1),
                threads=int(s.threads or 1),
                resolution=s.resolution,
                classes=s.classes,
                devices=[device],
                name="search finalists",
            )
        )
        notify(progress, "campaign", 0, len(archs), f"campaign {campaign_id} measures {len(archs)} architecture(s) "
               f"on {device}; waiting for its agents (Ctrl-C cancels it)")  # fmt: skip
        try:
            _wait(client, campaign_id, device, len(archs), timeout_s, progress)
        except KeyboardInterrupt:
            _cancel(client, campaign_id, progress)
            raise
        except _TimedOut:
            _cancel(client, campaign_id, progress)
            raise LatbenchError(f"campaign {campaign_id} did not finish within {timeout_s:.0f} s on {device}") from None
        return {str(r["arch"]): float(r["latency_ms"]) for r in client.iter_results(campaign_id)}


class _TimedOut(Exception):
    """The campaign did not finish in time (raised inside ``measure_by_campaign`` only)."""


def _wait(
    client: CollectorClient, campaign_id: str, device: str, archs: int, timeout_s: float, progress: Progress | None
) -> None:
    """Return once the campaign is done; say where it stands as it changes."""
    deadline = time.monotonic() + timeout_s
    said, said_at = None, time.monotonic()
    while True:
        status = client.campaign(campaign_id)
        if status.state == "failed":
            raise LatbenchError(f"campaign {campaign_id} failed: {status.error}")
        if status.state == "cancelled":
            raise LatbenchError(f"campaign {campaign_id} was cancelled before its finalists were measured")
        counts = tuple(sum(getattr(d, k) for d in status.devices) for k in ("done", "failed", "leased", "queued"))
        finished = status.state == "done"
        if finished or counts != said or time.monotonic() - said_at >= PROGRESS_EVERY_S:
            done, failed, leased, queued = counts
            phase = "building its models" if status.state == "building" else f"{leased} being measured"
            rest = "" if finished else f", {phase}, {queued} queued"
            line = f"campaign {campaign_id} on {device}: {done} of {archs} measured, {failed} failed{rest}"
            notify(progress, "campaign", done + failed, archs, line)
            said, said_at = counts, time.monotonic()
        if finished:
            return
        if time.monotonic() > deadline:
            raise _TimedOut
        time.sleep(1.0)


def _cancel(client: CollectorClient, campaign_id: str, progress: Progress | None) -> None:
    """Cancel the campaign, and say so (or how to, when the collector cannot be reached)."""
    try:
        client.cancel_campaign(campaign_id)
    except LatbenchError as exc:
        notify(progress, "campaign", message=f"could not cancel campaign {campaign_id} ({exc}); cancel it with: "
               f"latbench campaign cancel {campaign_id}")  # fmt: skip
        return
    notify(progress, "campaign", message=f"cancelled campaign {campaign_id}; its results so far stay on the collector")
