"""``latbench campaign cancel`` and ``campaign create --device`` for a device the collector does not know."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import LATBENCH, env
from tests.support.served import ADMIN_TOKEN, ARCHS, Clock, Harness, Served


@pytest.fixture
def served(tmp_path: Path, artifact_cache: Path) -> Iterator[Harness]:
    with Served(f"sqlite:///{tmp_path / 'c.sqlite'}", artifact_cache, Clock()) as harness:
        yield harness


def run(collector: Harness, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LATBENCH, *args, "--collector", collector.url], capture_output=True, text=True,
                          timeout=120, env=env(LATBENCH_ADMIN_TOKEN=ADMIN_TOKEN))  # fmt: skip


@pytest.mark.slow
def test_campaign_cancel_prints_the_id_marks_it_cancelled_and_is_idempotent(served: Harness):
    campaign = served.campaign(ARCHS[:2], wait=False)
    cancelled = run(served, "campaign", "cancel", campaign)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.strip() == campaign and f"campaign {campaign} cancelled" in cancelled.stderr
    again = run(served, "campaign", "cancel", campaign, "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["state"] == "cancelled"
    listed = run(served, "campaign", "list", "--json")
    assert [c["state"] for c in json.loads(listed.stdout)] == ["cancelled"]
    missing = run(served, "campaign", "cancel", "no-such-campaign")
    assert missing.returncode == 1 and "404" in missing.stderr and "Traceback" not in missing.stderr


@pytest.mark.slow
def test_campaign_create_warns_of_a_device_the_collector_does_not_know(served: Harness):
    served.agent("pi-agent", device="rpi4")
    create = ("campaign", "create", "--space", "nb201", "--arch", ARCHS[0], "--runtime", "onnxruntime")
    unknown = run(served, *create, "--device", "nosuchdev")
    assert unknown.returncode == 0, unknown.stderr
    assert len(unknown.stdout.split()) == 1
    stderr = " ".join(unknown.stderr.split())
    assert "the collector knows no device 'nosuchdev' (it knows: rpi4)" in stderr and "latbench devices" in stderr
    known = run(served, *create, "--device", "rpi4")
    assert known.returncode == 0 and "warning" not in known.stderr
