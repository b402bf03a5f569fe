"""A collector whose PostgreSQL server is down answers 503 with ``Retry-After`` and logs one line per request
(no traceback), serves again once the server is back, and agents retry every few seconds meanwhile."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from latbench.agents.client import AgentClient, retry
from latbench.errors import CollectorUnavailable
from tests.support.ports import free_port
from tests.support.postgres import Cluster, postgres_cluster
from tests.support.processes import wait_for
from tests.support.served import Clock, Harness, Served

pytestmark = pytest.mark.slow  # a PostgreSQL server of its own, stopped and started


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with postgres_cluster() as cluster:
        yield cluster


@pytest.fixture
def collector(cluster: Cluster, artifact_cache: Path) -> Iterator[Harness]:
    with Served(cluster.url, artifact_cache, Clock()) as harness:
        yield harness


def test_a_store_outage_answers_503_with_retry_after_and_one_log_line(
    collector: Harness, cluster: Cluster, caplog: pytest.LogCaptureFixture
):
    agent = collector.agent("steady")
    cluster.stop()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        campaigns = collector.admin.get("/admin/campaigns")
        lease = agent.post("/leases", json={"max_jobs": 1})
    for response in (campaigns, lease):
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == "2"
        assert response.json()["code"] == "store_unavailable"
    served = [r for r in caplog.records if not r.name.startswith("latbench.collectors.artifact_store")]
    assert [r.getMessage().split(":")[0] for r in served] == ["GET /v1/admin/campaigns", "POST /v1/leases"]
    assert all(r.exc_info is None for r in served)

    cluster.start()
    assert collector.admin.get("/admin/campaigns").status_code == 200
    assert agent.post("/leases", json={"max_jobs": 1}).status_code == 200


def test_agents_retry_every_few_seconds_while_the_store_or_the_collector_is_down(collector: Harness, cluster: Cluster):
    token = collector.agent("patient").headers["Authorization"].removeprefix("Bearer ")
    cluster.stop()
    waits: list[float] = []
    with AgentClient(collector.url, token) as client, pytest.raises(CollectorUnavailable) as down:
        retry(lambda: client.lease(1), attempts=10, sleep=waits.append, rng=random.Random(1))
    assert down.value.status == 503 and down.value.retry_after_s == 2
    assert len(waits) == 9 and all(2 <= w <= 3 for w in waits), waits  # Retry-After honoured, never past 3 s

    waits.clear()
    with AgentClient(f"http://127.0.0.1:{free_port()}", token) as gone, pytest.raises(CollectorUnavailable):
        retry(lambda: gone.lease(1), attempts=12, sleep=waits.append, rng=random.Random(2))
    assert len(waits) == 11 and max(waits) <= 3 and max(waits[4:]) > 1, waits


def test_the_adaptive_worker_logs_an_outage_once_and_its_end_once(
    cluster: Cluster, artifact_cache: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    """It retries every second; a traceback each time would bury the log for as long as the outage lasts."""
    import time

    from latbench.catalog import PredictorAcquirer

    acquirer = PredictorAcquirer()
    served = Served(cluster.url, artifact_cache, Clock(), acquirer=acquirer, models_dir=tmp_path / "models")
    with served, caplog.at_level(logging.INFO, logger="latbench.collectors.adaptive"):
        cluster.stop()
        # its rounds are a second apart, later on a busy machine: wait for the first to meet the outage
        wait_for(lambda: "adaptive campaigns wait" in caplog.text, 60, "the worker to meet the outage")
        time.sleep(3)  # about three more rounds of the worker, each meeting the outage again
        cluster.start()
        wait_for(lambda: "reachable again" in caplog.text, 60, "the worker to reach the store again")
    worker = [r for r in caplog.records if r.name == "latbench.collectors.adaptive"]
    assert [r.getMessage().split(":")[0] for r in worker] == [
        "adaptive campaigns wait",
        "adaptive campaigns go on",
    ], caplog.text
    assert all(r.exc_info is None for r in worker)
