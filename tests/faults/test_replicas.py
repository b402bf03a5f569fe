"""Collector replicas on one PostgreSQL store without a shared filesystem: each has its own artifacts directory,
agents reach them through a load balancer that keeps switching them between replicas, and every job is still
measured exactly once, whichever replica built its artifact."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.balancer import Balancer
from tests.support.ports import free_port
from tests.support.postgres import create_database
from tests.support.processes import Agent, Collector, totals, wait_for
from tests.support.tally import tally

pytestmark = pytest.mark.slow  # a PostgreSQL server, two collector processes, two agent processes

FAST = ["--min-runs", "10", "--min-time", "0.05", "--warmup-time", "0.02", "--attempts", "1"]
"""Short timings, measured once however unstable: on a busy machine re-measuring tripled each job's time, and
these tests are about the fleet, not the stability checks (tests/agents/test_measure.py)."""
ARCHS = 12


def test_replicas_with_their_own_artifacts_directories_serve_agents_that_switch_between_them(
    postgres_url: str, tmp_path: Path, artifact_cache: Path
):
    db = create_database(postgres_url, "replicas")
    first = Collector(db, tmp_path / "first", free_port(), 20, artifact_cache).start()
    second: Collector | None = None
    try:
        token = first.cli("token", "create", "--name", "replicas")
        campaign = first.cli("campaign", "create", "--space", "nb201", "--samples", str(ARCHS), "--seed", "21",
                             "--runtime", "onnxruntime", *FAST)  # fmt: skip
        wait_for(lambda: first.status(campaign)["state"] != "building", 180, "the first replica to build")
        second = Collector(db, tmp_path / "second", free_port(), 20).start()  # artifacts in its own data dir
        with Balancer([first.port, second.port], idle_s=0.1) as balancer:
            agents = [Agent(balancer, token, f"agent-{i}", tmp_path / f"agent-{i}", "--max-jobs", "2")  # type: ignore[arg-type]
                      for i in (1, 2)]  # fmt: skip
            try:
                wait_for(lambda: totals(second.status(campaign))["done"] == ARCHS, 240, f"{ARCHS} results")
            finally:
                codes = [agent.stop() for agent in agents]
        assert codes == [0, 0], [agent.log.read_text()[-2000:] for agent in agents]
        # both replicas served the agents, on more than one connection each (the balancer closes connections idle
        # for 0.1 s; how many that makes depends on the machine's speed: 2 and 3 seen on an idle one at 0.3 s)
        assert min(balancer.connections[first.port], balancer.connections[second.port]) >= 2, balancer.connections
        counts = tally(db, campaign, [agent.log for agent in agents])
        assert counts == {"total": ARCHS, "stored": ARCHS, "duplicated": 0, "lost": 0, "remeasured": 0, "errors": 0}
        assert list((tmp_path / "second" / "artifacts").glob("*.onnx"))  # served from the store, then its cache
    finally:
        for collector in (first, second):
            if collector is not None:
                assert collector.stop() == 0, collector.log.read_text()[-3000:]
