"""End to end with LiteRT: a real collector converts a campaign's networks to ``.tflite`` and a real agent
offering only the tflite runtime measures them, reference probe included."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pytest

from tests.support.ports import free_port
from tests.support.processes import Agent, Collector, totals, wait_for

pytestmark = pytest.mark.slow  # real collector and agent processes, LiteRT conversion

FAST = ["--min-runs", "10", "--min-time", "0.05", "--warmup-time", "0.02", "--attempts", "1"]
"""Short timings, measured once however unstable: on a busy machine re-measuring tripled each job's time, and
these tests are about the fleet, not the stability checks (tests/agents/test_measure.py)."""
ARCHS = [
    "|none~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|nor_conv_3x3~0|none~1|skip_connect~2|",
    "|skip_connect~0|+|nor_conv_1x1~0|none~1|+|nor_conv_3x3~0|skip_connect~1|avg_pool_3x3~2|",
]
"""Two small cells that the collector tests use too, so a session's artifact cache converts each once."""


def test_an_agent_measures_a_tflite_campaign_built_by_the_collector(tmp_path: Path, artifact_cache: Path):
    collector = Collector(f"sqlite:///{tmp_path / 'collector.sqlite'}", tmp_path / "collector", free_port(),
                          artifacts=artifact_cache).start()  # fmt: skip
    agent = None
    try:
        token = collector.cli("token", "create", "--name", "e2e")
        arch_args = [arg for arch in ARCHS for arg in ("--arch", arch)]
        campaign = collector.cli("campaign", "create", "--space", "nb201", *arch_args, "--runtime", "tflite", *FAST)
        agent = Agent(collector, token, "litert", tmp_path / "agent", "--runtime", "tflite")
        wait_for(lambda: totals(collector.status(campaign))["done"] == 2, 400, "2 tflite results", interval_s=1)
        assert collector.status(campaign)["state"] == "done"
        out = tmp_path / "out.csv"
        collector.cli("results", "export", "--campaign", campaign, "--out", str(out))
    finally:
        code = agent.stop() if agent is not None else 0
        collector.stop()
    assert code == 0, agent.log.read_text()[-2000:] if agent is not None else ""
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["arch"] for r in rows) == sorted(ARCHS)
    assert {r["runtime"] for r in rows} == {"tflite"}
    assert all(float(r["latency_ms"]) > 0 and float(r["ref_ratio"]) > 0 for r in rows)
    downloaded = {p.name: p for p in (tmp_path / "agent").rglob("*.tflite")}
    for row in rows:
        path = downloaded[f"{row['artifact_sha256']}.tflite"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == row["artifact_sha256"]
