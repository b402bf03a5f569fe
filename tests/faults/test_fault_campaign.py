"""The fault test: a campaign on PostgreSQL with two collector replicas (no shared filesystem) while one replica
is killed with SIGKILL and PostgreSQL restarts; agents keep going and every result is stored exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import fault_run
from tests.support.postgres import postgres_cluster

pytestmark = pytest.mark.slow  # a PostgreSQL server, two collectors and two agents, through faults


def test_a_campaign_through_a_killed_replica_and_a_database_restart_stores_every_result_once(
    tmp_path: Path, artifact_cache: Path
):
    plan = fault_run.Plan(archs=12, agents=2)
    with postgres_cluster() as cluster:
        counts = fault_run.run(cluster, tmp_path, artifact_cache, plan, say=print)
    assert {k: counts[k] for k in ("stored", "duplicated", "lost", "remeasured", "errors", "agents_failed")} == {
        "stored": 12, "duplicated": 0, "lost": 0, "remeasured": 0, "errors": 0, "agents_failed": 0,
    }  # fmt: skip
    assert counts["resumed_s"] < 15  # agents return within seconds of the store (not after a 30 s back-off)
