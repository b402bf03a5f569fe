"""``latbench deploy --ca-cert`` against a collector serving HTTPS: the CA certificate reaches the host privately
and the deployed agent verifies the collector with it (deploy returns only once the agent has enrolled)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from latbench.agents.remote.ssh import SshTarget
from latbench.deploy import build_wheel, stop
from tests.support.pki import make_pki
from tests.support.ports import free_port
from tests.support.processes import ADMIN_TOKEN, LATBENCH, Collector, env

pytestmark = pytest.mark.slow  # a real sshd and collector; deploys into a venv


def test_deploy_hands_the_agent_the_collectors_ca_certificate(sshd, tmp_path: Path, artifact_cache: Path):
    pki = make_pki(tmp_path / "pki")
    collector = Collector(None, tmp_path / "collector", free_port(), 30.0, artifact_cache,
                          "--tls-cert", str(pki.cert), "--tls-key", str(pki.key)).start()  # fmt: skip
    remote_dir = tmp_path / "host" / "latbench"
    environ = {**env(), "LATBENCH_CA_CERT": str(pki.ca)}
    try:
        token = subprocess.run([*LATBENCH, "token", "create", "--collector", collector.url], env=environ,
                               capture_output=True, text=True, timeout=60).stdout.strip()  # fmt: skip
        done = subprocess.run(
            [*LATBENCH, "deploy", f"{sshd.user}@127.0.0.1", "--port", str(sshd.port), "--key", str(sshd.user_key),
             "--known-hosts", str(sshd.known_hosts), "--collector", collector.url, "--token", token,
             "--ca-cert", str(pki.ca), "--admin-token", ADMIN_TOKEN, "--python", sys.executable,
             "--remote-dir", str(remote_dir), "--system-site-packages", "--offline",
             "--wheel", str(build_wheel(tmp_path / "wheel")), "--name", "tls-deployed", "--json"],
            capture_output=True, text=True, env=env(), timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["agent_name"] == "tls-deployed"
        copied = remote_dir / "ca.pem"
        assert copied.read_bytes() == pki.ca.read_bytes() and copied.stat().st_mode & 0o777 == 0o600
        assert f"LATBENCH_CA_CERT={copied}\n" in (remote_dir / "agent.env").read_text()
    finally:
        if (remote_dir / "agent.pid").exists():
            stop(SshTarget.parse(sshd.url), remote_dir=str(remote_dir), key_file=sshd.user_key,
                 known_hosts=sshd.known_hosts)  # fmt: skip
        collector.stop()
