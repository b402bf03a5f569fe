"""HTTPS end to end: a real collector serving TLS with a certificate made in the test, a real agent that verifies
it with ``--ca-cert`` and measures a campaign, and clients without that CA refused in one clear line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from latbench.client import CollectorClient
from latbench.errors import UntrustedCollector
from tests.support.pki import Pki, make_pki
from tests.support.ports import free_port
from tests.support.processes import ADMIN_TOKEN, LATBENCH, Agent, Collector, env, totals, wait_for

pytestmark = pytest.mark.slow  # real collector and agent processes

FAST = ["--min-runs", "10", "--min-time", "0.05", "--warmup-time", "0.02", "--attempts", "1"]
"""Short timings, measured once however unstable: on a busy machine re-measuring tripled each job's time, and
these tests are about the fleet, not the stability checks (tests/agents/test_measure.py)."""
CA_ENV = "LATBENCH_CA_CERT"


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


@pytest.fixture
def collector(tmp_path: Path, artifact_cache: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(CA_ENV, raising=False)
    c = Collector(None, tmp_path / "collector", free_port(), 4, artifact_cache,
                  "--tls-cert", str(pki.cert), "--tls-key", str(pki.key)).start()  # fmt: skip
    yield c
    c.stop()


def latbench(*args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in env(**extra_env).items() if k != CA_ENV or k in extra_env}
    return subprocess.run([*LATBENCH, *args], capture_output=True, text=True, env=environ, timeout=120)


def test_an_agent_with_the_collectors_ca_enrolls_and_pushes_over_https(collector: Collector, pki: Pki, tmp_path):
    assert collector.url.startswith("https://")
    token = latbench("token", "create", "--collector", collector.url, LATBENCH_CA_CERT=str(pki.ca)).stdout.strip()
    created = latbench("campaign", "create", "--collector", collector.url, "--space", "nb201", "--samples", "3",
                       "--runtime", "onnxruntime", *FAST, LATBENCH_CA_CERT=str(pki.ca))  # fmt: skip
    assert created.returncode == 0, created.stderr
    campaign = created.stdout.strip()
    agent = Agent(collector, token, "tls-agent", tmp_path / "agent", "--ca-cert", str(pki.ca))
    try:
        with CollectorClient(collector.url, ADMIN_TOKEN, ca_cert=str(pki.ca)) as client:
            wait_for(lambda: totals(client.campaign(campaign).model_dump())["done"] == 3, 180, "3 results over https")
    finally:
        code = agent.stop()
    assert code == 0, agent.log.read_text()[-2000:]


def test_clients_without_the_ca_are_refused_in_one_clear_line(collector: Collector, pki: Pki, tmp_path):
    other = make_pki(tmp_path / "other", name="another CA")
    runs = {
        "agent, system store": latbench("agent", "run", "--collector", collector.url, "--token", "lb_enroll_x",
                                        "--state-dir", str(tmp_path / "a1")),
        "agent, another CA": latbench("agent", "run", "--collector", collector.url, "--token", "lb_enroll_x",
                                      "--state-dir", str(tmp_path / "a2"), "--ca-cert", str(other.ca)),
        "admin command": latbench("campaign", "list", "--collector", collector.url),
    }  # fmt: skip
    for what, run in runs.items():
        assert run.returncode == 1, (what, run.stderr)
        assert "Traceback" not in run.stderr, (what, run.stderr)
        [line] = [line for line in run.stderr.splitlines() if "does not verify" in line]
        assert f"the collector at {collector.url} presented a certificate that does not verify" in line, line
        assert "--ca-cert or LATBENCH_CA_CERT" in line, line
    with CollectorClient(collector.url, ADMIN_TOKEN) as client, pytest.raises(UntrustedCollector):
        client.health()
    with CollectorClient(collector.url, ADMIN_TOKEN, ca_cert=str(pki.ca)) as client:
        assert client.health()["status"] == "ok"


def test_a_half_tls_configuration_is_refused(tmp_path: Path, pki: Pki):
    half, mismatched = ["--tls-cert", str(pki.cert)], ["--tls-cert", str(pki.cert), "--tls-key", str(pki.ca)]
    for args, says in [(half, "give both --tls-cert and --tls-key"), (mismatched, "cannot use TLS certificate")]:
        run = latbench("collector", "serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "c"), *args)
        assert run.returncode == 1 and says in run.stderr and "Traceback" not in run.stderr, run.stderr
