"""Driving an adaptive campaign on a served collector by hand: a device whose latency no predictor explains
fully, leasing the jobs the acquisition queues, and waiting for a device to stop."""

from __future__ import annotations

import hashlib
import time

from latbench.spaces import get_space
from tests.support.served import Harness

PLAN = {"target_srcc": 0.999, "budget": 8, "batch": 3}


def latency(arch: str, per_mflop: float) -> float:
    """A device whose latency follows the architecture's FLOPs plus a part no cost feature explains (a fixed
    pseudo-random share per architecture), so no predictor is perfect and the 0.999 target is out of reach."""
    unexplained = int(hashlib.sha256(arch.encode()).hexdigest()[:4], 16) % 11 / 10
    return 0.2 + per_mflop * get_space("nb201").costs(arch).mflops + unexplained


def lease(agent, max_jobs: int = 8) -> list[dict]:
    response = agent.post("/leases", json={"max_jobs": max_jobs})
    assert response.status_code == 200, response.text
    return response.json()["jobs"]


def next_jobs(agent, count: int, timeout_s: float = 120.0) -> list[dict]:
    """The ``count`` jobs the acquisition queues for the agent's device, leased as their artifacts are built."""
    deadline = time.monotonic() + timeout_s
    jobs: list[dict] = []
    while len(jobs) < count:
        assert time.monotonic() < deadline, f"{len(jobs)} of {count} next jobs were queued"
        jobs += lease(agent)
        time.sleep(0.2)
    time.sleep(0.5)
    return jobs + lease(agent)


def adaptive_device(collector: Harness, campaign: str, name: str, timeout_s: float = 60.0) -> dict:
    """The device's adaptive entry once it has stopped."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = {d["device"]: d for d in collector.status(campaign)["adaptive_devices"] or []}
        if name in found and found[name]["state"] == "stopped":
            return found[name]
        assert time.monotonic() < deadline, f"{name} did not stop: {found.get(name)}"
        time.sleep(0.2)
