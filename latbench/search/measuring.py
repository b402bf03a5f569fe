"""Measure a search's finalists for real, so what it picked is judged by the hardware and not the predictor.

Locally through ``latbench.measure``, or on a collector's device through a campaign of exactly those
architectures (the device's agents measure them; this waits for the campaign and reads its results back).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from latbench.agents.measure import TimingSettings
from latbench.errors import LatbenchError
from latbench.progress import Progress, notify


def measure_locally(
    space: str,
    archs: Sequence[str],
    settings: TimingSettings | None = None,
    threads: int = 1,
    runtime: str = "onnxruntime",
    progress: Progress | None = None,
) -> dict[str, float]:
    """Median latency (ms) of each architecture on this machine."""
    from latbench.local import measure

    rows = measure(space, list(archs), settings=settings, threads=threads, runtime=runtime, progress=progress)
    return {str(r["arch"]): float(r["latency_ms"]) for r in rows}  # type: ignore[arg-type]


def measure_by_campaign(
    collector: str,
    token: str | None,
    space: str,
    archs: Sequence[str],
    device: str,
    runtime: str = "onnxruntime",
    threads: int = 1,
    timeout_s: float = 3600.0,
    progress: Progress | None = None,
) -> dict[str, float]:
    """Median latency (ms) of each architecture on ``device``, measured by its agents through a campaign."""
    from latbench.client import CollectorClient
    from latbench.protocol import CampaignCreate

    with CollectorClient(collector, token) as client:
        campaign_id = client.create_campaign(
            CampaignCreate(
                space=space,
                archs=list(archs),
                runtime=runtime,
                threads=threads,
                devices=[device],
                name="search finalists",
            )
        )
        deadline = time.monotonic() + timeout_s
        while True:
            status = client.campaign(campaign_id)
            done = sum(d.done + d.failed for d in status.devices)
            total = sum(d.total for d in status.devices) or len(archs)
            notify(progress, "measure", done, total)
            if status.state == "failed":
                raise LatbenchError(f"campaign {campaign_id} failed: {status.error}")
            if status.state == "done":
                break
            if time.monotonic() > deadline:
                raise LatbenchError(f"campaign {campaign_id} did not finish within {timeout_s:.0f} s")
            time.sleep(1.0)
        return {str(r["arch"]): float(r["latency_ms"]) for r in client.iter_results(campaign_id)}
