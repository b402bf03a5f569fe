"""``latbench campaign create --priority``, ``campaign priority``, ``pause`` and ``resume``, as a user types them."""

from __future__ import annotations

import json

import pytest

from tests.support.served import ARCHS, Harness


@pytest.mark.slow
def test_priority_pause_and_resume_from_the_command_line(served: Harness):
    create = ("campaign", "create", "--space", "nb201", "--runtime", "onnxruntime")
    made = served.run_cli(*create, "--arch", ARCHS[0], "--priority", "3")
    assert made.returncode == 0, made.stderr
    campaign = made.stdout.strip()
    assert served.status(campaign)["priority"] == 3
    changed = served.run_cli("campaign", "priority", campaign, "7")
    assert changed.returncode == 0 and changed.stdout.strip() == campaign, changed.stderr
    assert f"campaign {campaign} given priority 7" in changed.stderr
    paused = served.run_cli("campaign", "pause", campaign, "--json")
    assert paused.returncode == 0 and json.loads(paused.stdout)["state"] == "paused", paused.stderr
    listed = served.run_cli("campaign", "list", "--json")
    assert [(c["priority"], c["state"]) for c in json.loads(listed.stdout)] == [(7, "paused")]
    table = served.run_cli("campaign", "list")
    assert "priority" in table.stdout and "paused" in table.stdout
    resumed = served.run_cli("campaign", "resume", campaign)
    assert resumed.returncode == 0 and f"campaign {campaign} resumed" in resumed.stderr
    assert served.status(campaign)["state"] in ("building", "running")
    assert served.run_cli("campaign", "cancel", campaign).returncode == 0
    refused = served.run_cli("campaign", "pause", campaign)
    assert refused.returncode == 1 and "409" in refused.stderr and "is cancelled" in " ".join(refused.stderr.split())
    assert "Traceback" not in refused.stderr


@pytest.mark.slow
def test_campaign_create_with_json_prints_the_new_campaigns_status(served: Harness):
    made = served.run_cli("campaign", "create", "--space", "nb201", "--runtime", "onnxruntime", "--arch", ARCHS[0],
                          "--name", "one", "--json")  # fmt: skip
    assert made.returncode == 0, made.stderr
    status = json.loads(made.stdout)
    assert status == {**status, "name": "one", "samples": 1, "runtime": "onnxruntime"}
    assert served.status(status["campaign_id"])["name"] == "one"
