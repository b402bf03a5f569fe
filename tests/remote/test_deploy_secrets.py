"""How ``latbench deploy`` hands the agent its secrets: an env file read as written, never by a shell."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from latbench.agents.remote.ssh import SshTarget
from latbench.deploy import DeployError, DeploySpec, deploy, env_file, nohup_script
from latbench.errors import LatbenchError
from tests.support.pki import make_pki
from tests.support.ports import free_port


@pytest.mark.parametrize(
    ("url", "token"),
    [("http://h:8700/$(touch pwned)", "lb_enroll_x"), ("http://h:8700", "a'b"), ("http://h:8700\nX=1", "lb_enroll_y")],
)
def test_values_the_env_file_cannot_carry_as_written_are_refused_before_connecting(url: str, token: str):
    target = SshTarget(user="nobody", host="127.0.0.1", port=free_port())
    with pytest.raises(DeployError, match="empty or holds whitespace, a quote") as refused:
        deploy(target, DeploySpec(url, token))
    assert token not in str(refused.value)


def test_the_nohup_script_passes_env_values_literally_and_keeps_its_pid(tmp_path: Path):
    value = "tok;$(touch pwned)`touch pwned2` 'q'"
    (tmp_path / "agent.env").write_text(f"LATBENCH_TOKEN={value}\n")
    show = [sys.executable, "-c", "import os, sys; sys.stdout.write(os.environ['LATBENCH_TOKEN'])"]
    script = nohup_script(sys.executable, str(tmp_path / "agent.env"), str(tmp_path / "agent.pid"), show)
    (tmp_path / "agent.sh").write_text(script)
    proc = subprocess.Popen(["sh", "agent.sh"], cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=60)
    assert out == value and proc.returncode == 0
    assert int((tmp_path / "agent.pid").read_text()) == proc.pid
    assert not list(tmp_path.glob("pwned*")) and value not in script


def test_the_env_file_names_the_collectors_ca_certificate_on_the_host():
    spec = DeploySpec("https://collector:8700", "lb_enroll_x")
    assert env_file(spec) == "LATBENCH_COLLECTOR=https://collector:8700\nLATBENCH_TOKEN=lb_enroll_x\n"
    assert env_file(spec, "/home/u/.local/share/latbench/ca.pem").endswith(
        "\nLATBENCH_CA_CERT=/home/u/.local/share/latbench/ca.pem\n"
    )
    with pytest.raises(DeployError, match=r"the CA certificate path '/home/a b/ca\.pem' is empty or holds whitespace"):
        env_file(spec, "/home/a b/ca.pem")


def test_a_ca_certificate_that_is_no_certificate_is_refused_before_connecting(tmp_path: Path):
    target = SshTarget(user="nobody", host="127.0.0.1", port=free_port())
    pki = make_pki(tmp_path / "pki")
    for ca, says in [(tmp_path / "missing.pem", "does not exist"), (pki.key, "cannot read CA certificate")]:
        with pytest.raises(LatbenchError, match=says):
            deploy(target, DeploySpec("https://h:8700", "lb_enroll_x", ca_cert=ca))
