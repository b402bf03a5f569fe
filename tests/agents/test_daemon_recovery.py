"""The agent's line when the collector answers again after an outage says what became of its spooled results: a
result the collector rejected (a collector restored from a backup no longer has its job) is a dead letter, not a
delivery."""

from __future__ import annotations

import logging
import threading

import httpx
import pytest

from latbench.agents.client import Backoff
from latbench.agents.daemon import AgentDaemon, run_agent
from latbench.agents.identity import Credentials
from latbench.agents.spool import Spool, SpoolCounts
from latbench.client import CollectorClient
from latbench.protocol import CampaignCreate, ResultItem
from tests.agents.factories import result
from tests.agents.test_daemon import QUICK, make_agent
from tests.support.ports import free_port
from tests.support.processes import ADMIN_TOKEN, Collector, wait_for
from tests.support.served import ARCHS, measurement


@pytest.mark.slow
def test_the_line_after_an_outage_counts_delivered_and_dead_lettered_results_apart(tmp_path, artifact_cache, caplog):
    collector = Collector(f"sqlite:///{tmp_path / 'collector.sqlite'}", tmp_path / "collector", free_port(),
                          lease_ttl_s=30, artifacts=artifact_cache)  # fmt: skip
    agents: list[AgentDaemon] = []
    worker = None
    try:
        collector.start()
        with CollectorClient(collector.url, ADMIN_TOKEN) as admin:
            token = admin.create_enrollment_token("agent-tests").token
            run_agent(make_agent(collector.url, tmp_path, enrollment_token=token))  # enrolled; no work yet
            campaign = admin.create_campaign(CampaignCreate(space="nb201", archs=ARCHS[:2], settings=QUICK))
            wait_for(lambda: admin.campaign(campaign).state != "building", 120, "the campaign's artifacts")
        state_dir = tmp_path / "agent"
        credentials = Credentials.load(state_dir / "agent.json")
        assert credentials is not None
        headers = {"Authorization": f"Bearer {credentials.agent_token}"}
        jobs = httpx.post(f"{collector.url}/v1/leases", json={"max_jobs": 2}, headers=headers).json()["jobs"]
        assert len(jobs) == 2
        with Spool(state_dir / "spool.sqlite") as spool:  # measured while the collector is away; one is stray
            for item in [ResultItem.model_validate(measurement(jobs[0])), result("no-such-job"),
                         ResultItem.model_validate(measurement(jobs[1]))]:  # fmt: skip
                spool.add(item)
        collector.stop()
        caplog.set_level(logging.INFO, logger="latbench.agent")

        def work() -> None:  # the agent's spool connection belongs to the thread that opens it
            agents.append(make_agent(collector.url, tmp_path, enrollment_token=None, max_idle_s=None,
                                     backoff=Backoff(first_s=0.05, cap_s=0.2)))  # fmt: skip
            with agents[0]:
                agents[0].run()

        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        wait_for(lambda: "trying again" in caplog.text, 30, "the agent to meet the outage")
        collector.start()
        wait_for(lambda: "answers again" in caplog.text, 60, "the agent to reach the collector again")
    finally:
        for agent in agents:
            agent.stop()
        if worker is not None:
            worker.join(60)
        collector.stop()
    [back] = [r.getMessage() for r in caplog.records if "answers again" in r.getMessage()]
    spool_path = state_dir / "spool.sqlite"
    assert back.endswith(f"; 2 spooled result(s) delivered, 1 rejected and kept as dead letters in {spool_path}")
    with Spool(spool_path) as spool:
        assert spool.counts() == SpoolCounts(pending=0, dead=1)
