"""A campaign through faults, for the fault test and ``benchmarks/faults.py``: two collector replicas on one
PostgreSQL store, each with its own artifacts directory, behind a load balancer; real agents measure while one
replica is killed with SIGKILL, PostgreSQL restarts (``pg_ctl restart -m immediate``) and the killed replica
comes back. What it counts: stored, duplicated and lost results (``tally``)."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.balancer import Balancer
from tests.support.ports import free_port
from tests.support.postgres import Cluster
from tests.support.processes import Agent, Collector, totals, wait_for
from tests.support.tally import tally

# Each result takes about a second, so the campaign is still running when a replica dies and PostgreSQL restarts
# (on an idle machine 12 architectures at 0.05 s each were all stored before the first fault).
TIMING = ["--min-runs", "10", "--min-time", "1.0", "--warmup-time", "0.02"]


@dataclass(frozen=True)
class Plan:
    archs: int = 12
    agents: int = 2
    max_jobs: int = 2
    seed: int = 21
    lease_ttl_s: float = 20.0
    timeout_s: float = 300.0


def _done(collector: Collector, campaign: str) -> int:
    """Results the campaign has, as ``collector`` says; -1 while it cannot say (down, or its store is)."""
    try:
        return totals(collector.status(campaign))["done"]
    except httpx.HTTPError:
        return -1


def run(
    cluster: Cluster, root: Path, artifacts: Path | None, plan: Plan, say: Callable[[str], None]
) -> dict[str, float]:
    """Run ``plan`` on ``cluster`` in ``root``; the first replica builds into ``artifacts`` (a warm cache, say),
    the second into its own directory. Returns ``tally``'s counts, the agents' exit codes (``agents_failed``:
    how many did not exit 0), and seconds: ``resumed_s`` from PostgreSQL's restart to the next stored result,
    ``wall_s`` from the agents' start to the last result."""
    first = Collector(cluster.url, root / "first", free_port(), plan.lease_ttl_s, artifacts).start()
    second: Collector | None = None
    agents: list[Agent] = []
    try:
        token = first.cli("token", "create", "--name", "faults")
        campaign = first.cli("campaign", "create", "--space", "nb201", "--samples", str(plan.archs), "--seed",
                             str(plan.seed), "--runtime", "onnxruntime", *TIMING)  # fmt: skip
        wait_for(lambda: first.status(campaign)["state"] != "building", plan.timeout_s, "the artifacts")
        second = Collector(cluster.url, root / "second", free_port(), plan.lease_ttl_s).start()
        survivor = second
        with Balancer([first.port, second.port]) as balancer:
            started = time.monotonic()
            agents = [Agent(balancer, token, f"agent-{i}", root / f"agent-{i}", "--max-jobs", str(plan.max_jobs))  # type: ignore[arg-type]
                      for i in range(plan.agents)]  # fmt: skip
            wait_for(lambda: _done(survivor, campaign) >= 2, plan.timeout_s, "first results")
            say(f"{_done(survivor, campaign)} results: killing the first replica (SIGKILL)")
            first.stop(signal.SIGKILL)
            time.sleep(1.0)
            before = _done(survivor, campaign)
            say(f"{before} results: restarting PostgreSQL (immediate)")
            cluster.restart()
            restarted = time.monotonic()
            if before >= plan.archs:
                raise AssertionError(f"all {plan.archs} results were stored before the faults: nothing was tested")
            wait_for(lambda: _done(survivor, campaign) > before, plan.timeout_s, "a result after the restart", 0.05)
            resumed_s = time.monotonic() - restarted
            say(f"a result {resumed_s:.1f} s after the restart; starting the first replica again")
            first.start()
            wait_for(lambda: _done(survivor, campaign) == plan.archs, plan.timeout_s, f"{plan.archs} results")
            wall_s = time.monotonic() - started
        codes = [agent.stop() for agent in agents]
        counts = tally(cluster.url, campaign, [agent.log for agent in agents])
        return {**counts, "agents_failed": sum(code != 0 for code in codes), "resumed_s": resumed_s, "wall_s": wall_s}
    finally:
        for agent in agents:
            if agent.proc.poll() is None:
                agent.stop(signal.SIGKILL)
        for collector in (second, first):
            if collector is not None:
                collector.stop()
