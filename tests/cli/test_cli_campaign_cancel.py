"""``latbench campaign cancel`` and ``campaign create --device`` for a device the collector does not know."""

from __future__ import annotations

import json

import pytest

from tests.support.served import ARCHS, Harness


@pytest.mark.slow
def test_campaign_cancel_prints_the_id_marks_it_cancelled_and_is_idempotent(served: Harness):
    campaign = served.campaign(ARCHS[:2], wait=False)
    cancelled = served.run_cli("campaign", "cancel", campaign)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.strip() == campaign and f"campaign {campaign} cancelled" in cancelled.stderr
    again = served.run_cli("campaign", "cancel", campaign, "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["state"] == "cancelled"
    listed = served.run_cli("campaign", "list", "--json")
    assert [c["state"] for c in json.loads(listed.stdout)] == ["cancelled"]
    missing = served.run_cli("campaign", "cancel", "no-such-campaign")
    assert missing.returncode == 1 and "404" in missing.stderr and "Traceback" not in missing.stderr


@pytest.mark.slow
def test_campaign_create_warns_of_a_device_the_collector_does_not_know(served: Harness):
    served.agent("pi-agent", device="rpi4")
    create = ("campaign", "create", "--space", "nb201", "--arch", ARCHS[0], "--runtime", "onnxruntime")
    unknown = served.run_cli(*create, "--device", "nosuchdev")
    assert unknown.returncode == 0, unknown.stderr
    assert len(unknown.stdout.split()) == 1
    stderr = " ".join(unknown.stderr.split())
    assert "the collector knows no device 'nosuchdev' (it knows: rpi4)" in stderr and "latbench devices" in stderr
    known = served.run_cli(*create, "--device", "rpi4")
    assert known.returncode == 0 and "warning" not in known.stderr
