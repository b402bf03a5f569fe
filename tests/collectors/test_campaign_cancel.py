"""Cancelling a campaign: its queued jobs are never leased again, leased ones may finish and their results are
kept, and it shows as ``cancelled``; cancelling twice changes nothing, an unknown id is a 404."""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa

from latbench.artifacts import REFERENCE_KEY, ArtifactCache
from latbench.collectors import campaigns
from latbench.collectors.artifact_store import ArtifactBuilder
from latbench.collectors.migrations import upgrade
from latbench.collectors.models import ArtifactRow
from latbench.protocol import CampaignCreate
from tests.collectors.test_leasing import lease
from tests.collectors.test_store_migrations import campaign as campaign_row
from tests.collectors.test_store_migrations import insert, store_at
from tests.support.served import ARCHS, LEASE_TTL_S, Harness, measurement


def test_a_cancelled_campaign_leases_nothing_more_but_keeps_what_its_agents_finish(collector: Harness):
    campaign = collector.campaign(ARCHS[:4], devices=["rpi4"])
    agent = collector.agent("pi-1", device="rpi4")
    first, second = lease(agent, max_jobs=2)
    response = collector.admin.post(f"/admin/campaigns/{campaign}/cancel")
    assert response.status_code == 200, response.text
    cancelled = response.json()
    assert cancelled["state"] == "cancelled"
    assert cancelled["devices"][0]["leased"] == 2 and cancelled["devices"][0]["eta_s"] is None
    assert lease(agent, max_jobs=5) == []
    assert collector.agent("pi-2", device="rpi4").post("/leases", json={"max_jobs": 5}).json()["jobs"] == []
    stored = agent.post("/results", json={"results": [measurement(first, 2.0)]})
    assert stored.status_code == 200, stored.text
    collector.clock.advance(LEASE_TTL_S * 3)  # the other lease expires: its job is not leased again either
    assert lease(agent, max_jobs=5) == []
    status = collector.status(campaign)
    assert status["state"] == "cancelled" and status["devices"][0]["done"] == 1
    rows = collector.admin.get(f"/admin/campaigns/{campaign}/results").text.splitlines()
    assert len(rows) == 1 and first["arch"] in rows[0] and second["arch"] not in rows[0]
    listed = collector.admin.get("/admin/campaigns").json()
    assert [c["state"] for c in listed if c["campaign_id"] == campaign] == ["cancelled"]


def test_other_campaigns_go_on_after_one_is_cancelled(collector: Harness):
    cancelled = collector.campaign(ARCHS[:2])
    going = collector.campaign(ARCHS[2:4])
    assert collector.admin.post(f"/admin/campaigns/{cancelled}/cancel").status_code == 200
    jobs = lease(collector.agent("pi-1"), max_jobs=5)
    assert {j["campaign_id"] for j in jobs} == {going} and [j["arch"] for j in jobs] == ARCHS[2:4]


def test_cancelling_twice_changes_nothing_and_an_unknown_campaign_is_404(collector: Harness):
    campaign = collector.campaign(ARCHS[:1])
    assert collector.admin.post(f"/admin/campaigns/{campaign}/cancel").json()["state"] == "cancelled"
    before = collector.dump()
    collector.clock.advance(60)
    again = collector.admin.post(f"/admin/campaigns/{campaign}/cancel")
    assert again.status_code == 200 and again.json()["state"] == "cancelled"
    assert collector.dump() == before
    missing = collector.admin.post("/admin/campaigns/no-such-campaign/cancel")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert collector.client().post(f"/admin/campaigns/{campaign}/cancel").status_code == 401


def test_0009_upgrades_an_older_store_whose_campaigns_are_not_cancelled(db_url: str):
    with store_at(db_url, "0008") as store:
        insert(store, [("campaigns", campaign_row(datetime.now(timezone.utc)))])
        upgrade(store.engine)
        with store.engine.connect() as conn:
            assert conn.scalar(sa.text("SELECT count(*) FROM campaigns WHERE cancelled_at IS NULL")) == 1


def test_artifacts_only_cancelled_campaigns_measure_are_not_built(tmp_path, artifact_cache):
    """Nothing is exported for a cancelled campaign; an artifact another live campaign measures still is."""
    now = datetime.now(timezone.utc)
    with store_at(f"sqlite:///{tmp_path / 'c.sqlite'}") as store:
        with store.write() as session:
            cancelled = campaigns.create(session, CampaignCreate(space="nb201", archs=ARCHS[:3]), now).id
            campaigns.create(session, CampaignCreate(space="nb201", archs=ARCHS[:1]), now)
            campaigns.cancel(session, cancelled, now)
        builder = ArtifactBuilder(store, ArtifactCache(artifact_cache), lambda: now)
        built = []
        while (work := builder._next()) is not None:
            built += [key.arch for key in work[0]]
            builder._build(*work)
        assert built == [REFERENCE_KEY.arch, ARCHS[0]]
        with store.read() as session:
            pending = session.scalars(sa.select(ArtifactRow.arch).where(ArtifactRow.sha256.is_(None))).all()
        assert sorted(pending) == sorted(ARCHS[1:3])
