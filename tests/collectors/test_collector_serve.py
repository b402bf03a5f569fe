"""``latbench collector serve`` as a real process: first-start admin token, readiness line, clean shutdown."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

SERVE = [sys.executable, "-m", "latbench", "collector", "serve"]


def start(data_dir: Path, artifacts: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str, str]:
    """Start the collector on a free port; return the process, its URL and what it printed before listening."""
    data_dir.mkdir(exist_ok=True)
    if not (data_dir / "artifacts").exists():
        (data_dir / "artifacts").symlink_to(artifacts)
    environ = {k: v for k, v in os.environ.items() if k != "LATBENCH_ADMIN_TOKEN"} | (env or {})
    process = subprocess.Popen([*SERVE, "--data-dir", str(data_dir), "--port", "0"], stderr=subprocess.PIPE, text=True,
                               env=environ)  # fmt: skip
    printed = ""
    deadline = time.monotonic() + 60
    assert process.stderr is not None
    while (match := re.search(r"collector listening on (http://\S+)", printed)) is None:
        assert time.monotonic() < deadline and process.poll() is None, printed
        printed += process.stderr.readline()
    return process, match.group(1), printed


def stop(process: subprocess.Popen, sig: int) -> int:
    process.send_signal(sig)
    return process.wait(30)


def test_first_start_prints_an_admin_token_once_and_sigterm_or_sigint_stop_it_cleanly(
    tmp_path: Path, artifact_cache: Path
):
    process, url, printed = start(tmp_path / "collector", artifact_cache)
    try:
        [token] = re.findall(r"admin token \(shown once, store it\): (\S+)", printed)
        with httpx.Client(base_url=url + "/v1") as http:
            assert http.get("/health").json()["status"] == "ok"
            assert http.get("/admin/devices", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    finally:
        assert stop(process, signal.SIGTERM) == 0
    assert (tmp_path / "collector" / "collector.sqlite").is_file()
    process, url, printed = start(tmp_path / "collector", artifact_cache)
    try:
        assert "admin token" not in printed
        with httpx.Client(base_url=url + "/v1", headers={"Authorization": f"Bearer {token}"}) as http:
            assert http.get("/admin/devices").status_code == 200
    finally:
        assert stop(process, signal.SIGINT) == 0


def test_an_admin_token_from_the_environment_is_used_and_never_printed(tmp_path: Path, artifact_cache: Path):
    secret = "an-admin-token-from-the-environment"
    process, url, printed = start(tmp_path / "collector", artifact_cache, {"LATBENCH_ADMIN_TOKEN": secret})
    try:
        assert secret not in printed and "admin token" not in printed
        with httpx.Client(base_url=url + "/v1", headers={"Authorization": f"Bearer {secret}"}) as http:
            assert http.get("/admin/campaigns").json() == []
    finally:
        assert stop(process, signal.SIGTERM) == 0
