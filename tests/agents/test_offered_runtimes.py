"""What an agent offers is what it offers at this start: a restart with a runtime added or taken away tells the
collector, which leases by it; before, the runtimes of the first enrollment held for ever (a tflite campaign waited
on an agent restarted with tflite, and an agent restarted without TVM was leased TVM jobs)."""

from __future__ import annotations

import pytest

from latbench.agents.daemon import AgentDaemon, run_agent
from latbench.agents.identity import Credentials
from latbench.agents.reports import runtime_offer
from tests.support.served import Harness


def start(served: Harness, state_dir, runtimes: list[str], token: str | None = None) -> Credentials:
    offers = [runtime_offer(name) for name in runtimes]
    run_agent(AgentDaemon(served.url, offers, state_dir=state_dir, enrollment_token=token, name="bench-1",
                          max_idle_s=0.3, poll_s=0.05))  # fmt: skip
    saved = Credentials.load(state_dir / "agent.json")
    assert saved is not None
    return saved


def offered(served: Harness) -> list[str]:
    (device,) = served.admin.get("/admin/devices").json()
    return sorted(device["runtimes"])


@pytest.mark.slow  # a real collector
def test_a_restart_with_other_runtimes_tells_the_collector_and_keeps_the_agent(served, tmp_path, caplog):
    state_dir = tmp_path / "agent"
    first = start(served, state_dir, ["onnxruntime"], served.enroll_token())
    assert offered(served) == ["onnxruntime"]

    caplog.set_level("INFO", logger="latbench")
    added = start(served, state_dir, ["onnxruntime", "tflite"])  # no enrollment token: its own token does it
    assert offered(served) == ["onnxruntime", "tflite"]
    assert (added.agent_id, added.device_id, added.name) == (first.agent_id, first.device_id, first.name)
    assert added.offered != first.offered
    assert "told the collector the runtimes this agent offers now: onnxruntime, tflite" in caplog.text
    assert served.client(first.agent_token).post("/leases", json={"max_jobs": 1}).status_code == 401

    caplog.clear()
    same = start(served, state_dir, ["onnxruntime", "tflite"])  # the same offer: nothing to tell
    assert same.agent_token == added.agent_token and "told the collector" not in caplog.text

    start(served, state_dir, ["tflite"])
    assert offered(served) == ["tflite"]
