"""A damaged or unreadable ``agent.json`` stops the agent in one line, and what that line advises is true: an admin
token enrolls the agent again as itself, and its spooled results land; an enrollment token cannot bring it back."""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from latbench.agents.daemon import AgentDaemon, run_agent
from latbench.agents.environment import machine_info
from latbench.agents.identity import Credentials
from latbench.agents.reports import runtime_offer
from latbench.agents.spool import Spool, SpoolCounts
from latbench.errors import CollectorRejected, LatbenchError
from latbench.protocol import ResultItem
from tests.support.processes import LATBENCH, env, totals
from tests.support.served import ADMIN_TOKEN, ARCHS, Harness, measurement

SAVED = {"collector_url": "http://127.0.0.1:8700", "agent_id": "a-1", "agent_token": "agent-token",
         "device_id": "d-1", "device_name": "desk", "heartbeat_interval_s": 10.0, "lease_ttl_s": 30.0,
         "name": "bench-1", "fingerprint": "0123456789abcdef"}  # fmt: skip


def write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_saved_credentials_load_as_they_were(tmp_path):
    credentials = Credentials(**SAVED)
    credentials.save(tmp_path / "agent.json")
    assert Credentials.load(tmp_path / "agent.json") == credentials


def test_a_file_from_before_the_name_and_fingerprint_still_loads_and_a_newer_agents_keys_are_ignored(tmp_path):
    old = {k: v for k, v in SAVED.items() if k not in ("name", "fingerprint")}
    assert Credentials.load(write(tmp_path / "agent.json", old)) == Credentials(**old)
    newer = {**SAVED, "energy_budget": 3}
    assert Credentials.load(write(tmp_path / "agent.json", newer)) == Credentials(**SAVED)


DAMAGE = [
    ({"heartbeat_interval_s": "fast"}, "heartbeat_interval_s: Input should be a valid number"),
    ({"heartbeat_interval_s": 1e9}, "heartbeat_interval_s: Input should be less than or equal to 86400"),
    ({"heartbeat_interval_s": 0.01}, "heartbeat_interval_s: Input should be greater than or equal to 0.1"),
    ({"heartbeat_interval_s": math.inf}, "heartbeat_interval_s: Input should be a finite number"),
    ({"heartbeat_interval_s": True}, "heartbeat_interval_s: Input should be a valid number"),
    ({"lease_ttl_s": 0}, "lease_ttl_s: Input should be greater than 0"),
    ({"lease_ttl_s": "30"}, "lease_ttl_s: Input should be a valid number"),
    ({"agent_id": ""}, "agent_id: String should have at least 1 character"),
    ({"device_name": 7}, "device_name: Input should be a valid string"),
    ({"agent_token": "two words"}, "agent_token: String should match pattern"),
    ({"name": None}, "name: Input should be a valid string"),
    ({"fingerprint": ["x"]}, "fingerprint: Input should be a valid string"),
    ({"collector_url": None}, "collector_url: Input should be a valid string"),
]
"""A value of agent.json changed, and the problem the refusal names."""


@pytest.mark.parametrize(
    ("change", "problem"), DAMAGE, ids=[",".join(f"{k}={v!r}" for k, v in c.items()) for c, _ in DAMAGE]
)
def test_a_value_of_the_wrong_type_or_out_of_range_is_damage_said_in_one_line(tmp_path, change, problem):
    path = write(tmp_path / "agent.json", {**SAVED, **change})
    with pytest.raises(LatbenchError) as refused:
        Credentials.load(path)
    message = str(refused.value)
    assert message.startswith(f"{path} is damaged ({problem}") and "\n" not in message


@pytest.mark.parametrize("content", ['{"collector_url": ', "[1, 2]", "", "\udcff"])
def test_a_file_that_is_no_credentials_object_is_damage(tmp_path, content):
    path = tmp_path / "agent.json"
    path.write_bytes(content.encode("utf-8", "surrogateescape"))
    with pytest.raises(LatbenchError, match=f"^{path} is damaged"):
        Credentials.load(path)


def test_a_missing_field_is_damage(tmp_path):
    path = write(tmp_path / "agent.json", {k: v for k, v in SAVED.items() if k != "agent_token"})
    with pytest.raises(LatbenchError, match=r"is damaged \(agent_token: Field required\)"):
        Credentials.load(path)


def test_an_agent_json_that_is_a_directory_or_cannot_be_read_is_one_clear_line(tmp_path):
    (tmp_path / "agent.json").mkdir()
    with pytest.raises(LatbenchError, match=r"agent.json is damaged \(a directory, not a file\); to enroll"):
        Credentials.load(tmp_path / "agent.json")
    os.symlink("loop.json", tmp_path / "loop.json")  # every read fails (ELOOP), whoever runs the test
    with pytest.raises(LatbenchError, match=r"cannot read the agent's credentials .*loop.json: Too many levels"):
        Credentials.load(tmp_path / "loop.json")


def test_no_agent_json_is_no_credentials(tmp_path):
    assert Credentials.load(tmp_path / "agent.json") is None


# --- what the damaged-file line advises, against a real collector -------------------------------------------


def damaged_agent_with_spooled_results(served: Harness, state_dir: Path, name: str) -> tuple[str, list[ResultItem]]:
    """Agent ``name``, enrolled as this machine, holding every job of a new campaign and a measurement of each in
    its spool, whose agent.json is then damaged; the campaign's id and the spooled results."""
    campaign = served.campaign(ARCHS[:2])
    info = machine_info()
    enrolled = served.enroll(name, fingerprint=info.fingerprint(), machine=info.as_dict())
    assert enrolled.status_code == 201, enrolled.text
    answer = enrolled.json()
    jobs = served.client(answer["agent_token"]).post("/leases", json={"max_jobs": 5}).json()["jobs"]
    assert len(jobs) == 2
    items = [ResultItem.model_validate(measurement(job)) for job in jobs]
    state_dir.mkdir()
    with Spool(state_dir / "spool.sqlite") as spool:
        for item in items:
            spool.add(item)
    (state_dir / "agent.json").write_text('{"collector_url": "' + served.url)  # torn by a crash, say
    return campaign, items


def start(served: Harness, state_dir: Path, token: str, name: str) -> None:
    agent = AgentDaemon(served.url, [runtime_offer("onnxruntime")], state_dir=state_dir, enrollment_token=token,
                        name=name, max_idle_s=0.5, poll_s=0.1)  # fmt: skip
    run_agent(agent)


@pytest.mark.slow  # a real collector and its artifacts
def test_what_the_damaged_file_line_advises_is_true(served, tmp_path):
    state_dir = tmp_path / "agent"
    campaign, _ = damaged_agent_with_spooled_results(served, state_dir, "bench-1")
    with pytest.raises(LatbenchError) as refused:
        Credentials.load(state_dir / "agent.json")
    assert "start the agent with its --name and an admin token (LATBENCH_TOKEN or --token)" in str(refused.value)
    (state_dir / "agent.json").unlink()

    with pytest.raises(CollectorRejected, match="409 conflict: agent name 'bench-1' is enrolled already"):
        start(served, state_dir, served.enroll_token(), "bench-1")  # an enrollment token enrolls new names only

    start(served, state_dir, ADMIN_TOKEN, "bench-1")
    assert totals(served.status(campaign))["done"] == 2
    with Spool(state_dir / "spool.sqlite") as spool:
        assert spool.counts() == SpoolCounts(pending=0, dead=0)
    assert Credentials.load(state_dir / "agent.json").name == "bench-1"


@pytest.mark.slow  # a real collector and its artifacts
def test_enrolled_under_a_new_name_the_spooled_results_are_refused_as_another_agents(served, tmp_path):
    """Why the advice is the admin token: a new agent cannot deliver the old one's results."""
    state_dir = tmp_path / "agent"
    _, items = damaged_agent_with_spooled_results(served, state_dir, "bench-1")
    (state_dir / "agent.json").unlink()
    start(served, state_dir, served.enroll_token(), "bench-2")
    with Spool(state_dir / "spool.sqlite") as spool:
        letters = spool.dead_letters()
    assert [item for item, _ in letters] == items
    assert all("belongs to another agent" in reason for _, reason in letters)


@pytest.mark.slow  # a CLI process
def test_the_cli_says_agent_json_is_damaged_in_one_line(tmp_path):
    (tmp_path / "agent.json").mkdir()
    command = [*LATBENCH, "agent", "run", "--collector", "http://127.0.0.1:9", "--state-dir", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env())
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: {tmp_path / 'agent.json'} is damaged (a directory, not a file)")
    assert done.stderr.count("\n") == 1
