"""``latbench collector serve`` as a real process: first-start admin token, readiness line, clean shutdown."""

from __future__ import annotations

import gc
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from latbench.collectors.service import GC_FIRST_GENERATION, settle_heap
from tests.support.processes import Collector, children, wait_for

SERVE = [sys.executable, "-m", "latbench", "collector", "serve"]


def start(data_dir: Path, artifacts: Path, admin_token: str | None = None, *extra: str) -> Collector:
    """Start the collector on a free port with its store in ``data_dir``, as a first-time user does."""
    data_dir.mkdir(exist_ok=True)
    if not (data_dir / "artifacts").exists():
        (data_dir / "artifacts").symlink_to(artifacts)
    return Collector(None, data_dir, 0, None, None, *extra, admin_token=admin_token).start()


@pytest.mark.slow
def test_first_start_prints_an_admin_token_once_and_sigterm_or_sigint_stop_it_cleanly(
    tmp_path: Path, artifact_cache: Path
):
    collector = start(tmp_path / "collector", artifact_cache)
    try:
        [token] = re.findall(r"admin token \(shown once, store it\): (\S+)", collector.printed)
        with httpx.Client(base_url=collector.url + "/v1") as http:
            assert http.get("/health").json()["status"] == "ok"
            assert http.get("/admin/devices", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    finally:
        assert collector.stop(signal.SIGTERM) == 0
    assert (tmp_path / "collector" / "collector.sqlite").is_file()
    collector = start(tmp_path / "collector", artifact_cache)
    try:
        assert "admin token" not in collector.printed
        with httpx.Client(base_url=collector.url + "/v1", headers={"Authorization": f"Bearer {token}"}) as http:
            assert http.get("/admin/devices").status_code == 200
    finally:
        assert collector.stop(signal.SIGINT) == 0


@pytest.mark.slow
def test_an_admin_token_from_the_environment_is_used_and_never_printed(tmp_path: Path, artifact_cache: Path):
    secret = "an-admin-token-from-the-environment"
    collector = start(tmp_path / "collector", artifact_cache, secret)
    try:
        assert secret not in collector.printed and "admin token" not in collector.printed
        with httpx.Client(base_url=collector.url + "/v1", headers={"Authorization": f"Bearer {secret}"}) as http:
            assert http.get("/admin/campaigns").json() == []
    finally:
        assert collector.stop(signal.SIGTERM) == 0


@pytest.mark.slow
def test_a_worker_that_dies_is_replaced_and_workers_stop_with_their_owner(tmp_path: Path, artifact_cache: Path):
    collector = start(tmp_path / "collector", artifact_cache, None, "--workers", "2")
    process, url = collector.proc, collector.url
    assert process is not None
    try:
        assert f"collector listening on {url} (2 worker processes)" in collector.printed
        wait_for(lambda: len(children(process.pid)) == 1, 30, "one worker process")
        [worker] = children(process.pid)
        os.kill(worker, signal.SIGKILL)
        wait_for(lambda: children(process.pid) not in ([], [worker]), 30, "a new worker")
        [replacement] = children(process.pid)
        with httpx.Client(base_url=url + "/v1") as http:  # answered by either process
            assert all(http.get("/health", headers={"Connection": "close"}).status_code == 200 for _ in range(8))
    finally:
        process.send_signal(signal.SIGKILL)  # the owner dies without stopping its worker...
        process.wait(30)
    wait_for(lambda: not Path(f"/proc/{replacement}").exists(), 30, "the orphaned worker to stop")  # ...which stops


def _sockets(pid: int, port: int, status: str) -> int:
    connections = psutil.Process(pid).net_connections(kind="tcp")
    return sum(1 for c in connections if c.status == status and c.laddr.port == port)


def _serving(pids: list[int], port: int) -> dict[int, int]:
    """Which of ``pids`` holds the server side of each open connection to ``port``, by the client's port."""
    return {
        c.raddr.port: pid
        for pid in pids
        for c in psutil.Process(pid).net_connections(kind="tcp")
        if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port and c.raddr
    }


@pytest.mark.slow
def test_the_kernel_spreads_connections_over_the_worker_processes(tmp_path: Path, artifact_cache: Path):
    collector = start(tmp_path / "collector", artifact_cache, None, "--workers", "3")
    process, port, clients = collector.proc, int(collector.url.rsplit(":", 1)[1]), []
    assert process is not None
    try:
        wait_for(lambda: len(children(process.pid)) == 2, 30, "two worker processes")
        pids = [process.pid, *children(process.pid)]
        wait_for(lambda: all(_sockets(pid, port, psutil.CONN_LISTEN) for pid in pids), 60, "every process listening")
        owner: dict[int, int | None] = {}  # each connection's client port: the process that served it
        for _ in range(24):
            # kept open, as agents keep theirs; who serves each is read at once, 10 at a time: on a busy machine the
            # 240 took longer than the server's 5 s keep-alive, and a count at the end missed the first ones
            batch = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(10)]
            for client in batch:
                clients.append(client)
                client.request("GET", "/v1/health")
                assert client.getresponse().read()
            serving = _serving(pids, port)
            for client in batch:
                assert client.sock is not None
                owner[client.sock.getsockname()[1]] = serving.get(client.sock.getsockname()[1])
        served = [list(owner.values()).count(pid) for pid in pids]
        # 80 each on average (binomial: below 50 about once in 50,000 runs); accepting from one shared socket,
        # one process took 225, 240 and 240 of them in three runs of this test
        assert len(owner) == sum(served) == 240 and min(served) >= 50, (len(owner), served)
    finally:
        for client in clients:
            client.close()
        assert collector.stop(signal.SIGTERM) == 0


@pytest.mark.slow
def test_a_weak_admin_token_is_refused_before_the_store_is_created(tmp_path: Path):
    done = subprocess.run([*SERVE, "--data-dir", str(tmp_path / "data"), "--port", "0"], capture_output=True,
                          text=True, env={**os.environ, "LATBENCH_ADMIN_TOKEN": "short"}, timeout=60)  # fmt: skip
    assert done.returncode == 1 and "LATBENCH_ADMIN_TOKEN is too weak" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "data").exists()


@pytest.mark.slow
def test_workers_need_to_be_at_least_one(tmp_path: Path):
    done = subprocess.run([*SERVE, "--data-dir", str(tmp_path), "--workers", "0"], capture_output=True, text=True)
    assert done.returncode == 2 and "--workers" in done.stderr


@pytest.mark.slow
def test_a_store_that_cannot_be_opened_is_one_clear_line_without_its_password(tmp_path: Path, postgres_url: str):
    """A database that does not exist on a real server, its URL typed with a password; a SQLite file in a missing
    directory: one error line each, saying where (no password) and why, and exit 1; the typed password is warned
    of."""
    missing = postgres_url.replace("postgres@", "postgres:s3cret-pw@", 1).rsplit("/", 1)[0] + "/no_such_database"
    done = subprocess.run([*SERVE, "--data-dir", str(tmp_path), "--port", "0", "--db", missing],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "s3cret-pw" not in done.stderr and "Traceback" not in done.stderr and "internal error" not in done.stderr
    assert "warning: the --db URL holds a password" in done.stderr
    [line] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert "cannot open the store at postgresql+psycopg://postgres:***@127.0.0.1:" in line
    assert 'database "no_such_database" does not exist' in line
    nowhere = f"sqlite:///{tmp_path / 'no' / 'such' / 'collector.sqlite'}"
    done = subprocess.run([*SERVE, "--data-dir", str(tmp_path), "--port", "0", "--db", nowhere],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1 and "warning" not in done.stderr
    assert done.stderr.strip() == f"error: cannot open the store at {nowhere}: unable to open database file"
    done = subprocess.run([*SERVE, "--data-dir", str(tmp_path), "--port", "0", "--db", "latbench:s3cret-pw@db/x"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1 and done.stderr.strip() == "error: not a database URL: 'latbench:***@db/x'"


def _refused(data_dir: Path, *options: str, prefix: tuple[str, ...] = ()) -> str:
    """Start the collector as a first-time user (no admin token in the environment) where it cannot listen: it must
    exit 1 with one error line, and before writing anything, so that no store holds an admin token never shown."""
    environ = {k: v for k, v in os.environ.items() if k != "LATBENCH_ADMIN_TOKEN"}
    done = subprocess.run([*prefix, *SERVE, "--data-dir", str(data_dir), *options], capture_output=True, text=True,
                          env=environ, timeout=60)  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert not data_dir.exists()
    [line] = [line for line in done.stderr.splitlines() if not line.startswith(PLAIN_HTTP)]
    assert line.startswith("error: cannot listen on "), line
    return line


PLAIN_HTTP = "warning: plain HTTP on "


@pytest.mark.slow
def test_plain_http_beyond_loopback_is_warned_of_and_loopback_or_tls_is_not(tmp_path: Path):
    """Tokens travel in every request: plain HTTP on an address other machines reach earns a warning (a proxy in
    front may terminate TLS, so it is no refusal). Each start here fails at once, on a held port or absent TLS files."""
    environ = {k: v for k, v in os.environ.items() if k != "LATBENCH_ADMIN_TOKEN"}

    def stderr(*options: str) -> list[str]:
        done = subprocess.run([*SERVE, "--data-dir", str(tmp_path / "c"), *options], capture_output=True,
                              text=True, env=environ, timeout=60)  # fmt: skip
        assert done.returncode == 1, done.stderr
        return done.stderr.splitlines()

    with socket.create_server(("0.0.0.0", 0)) as holder:
        port = str(holder.getsockname()[1])
        warned, refused = stderr("--host", "0.0.0.0", "--port", port)
        assert warned == (f"{PLAIN_HTTP}0.0.0.0: every token travels readable; serve HTTPS (--tls-cert, --tls-key) "
                          "or put a TLS-terminating proxy in front")  # fmt: skip
        assert refused.startswith("error: cannot listen on 0.0.0.0:")
        for host in ("127.0.0.1", "localhost"):
            assert not any(line.startswith(PLAIN_HTTP) for line in stderr("--host", host, "--port", port))
    missing = ["--tls-cert", str(tmp_path / "no.pem"), "--tls-key", str(tmp_path / "no.key")]
    assert not any(line.startswith(PLAIN_HTTP) for line in stderr("--host", "0.0.0.0", *missing))


@pytest.mark.parametrize("shared", [False, True], ids=["held", "held-by-workers"])
@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.slow
def test_a_busy_port_is_one_error_line_before_the_store_and_its_admin_token_exist(
    tmp_path: Path, artifact_cache: Path, workers: str, shared: bool
):
    """Also when what holds the port is another collector's workers (SO_REUSEPORT), which a collector with
    workers must not join. Started again on a free port, it is still a first start: it prints an admin token."""
    with socket.create_server(("127.0.0.1", 0), reuse_port=shared) as holder:
        port = str(holder.getsockname()[1])
        line = _refused(tmp_path / "collector", "--port", port, "--workers", workers)
    assert line == (f"error: cannot listen on 127.0.0.1:{port}: the port is in use (another collector?); "
                    "stop what listens there or choose another --port")  # fmt: skip
    collector = start(tmp_path / "collector", artifact_cache, None, "--workers", workers)
    try:
        assert "admin token (shown once, store it): " in collector.printed
    finally:
        assert collector.stop(signal.SIGTERM) == 0


def _unprivileged() -> tuple[str, ...]:
    """A command prefix that runs without the privilege to listen below port 1024 (root drops the capability)."""
    if int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text()) <= 1:
        pytest.skip("any process may listen on any port here")
    if os.geteuid() != 0:
        return ()
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv to drop root's privilege to listen below port 1024")
    return ("setpriv", "--inh-caps", "-net_bind_service", "--bounding-set", "-net_bind_service")


@pytest.mark.slow
def test_an_address_or_port_it_may_not_listen_on_is_one_error_line_saying_which_option_to_change(tmp_path: Path):
    line = _refused(tmp_path / "c", "--host", "192.0.2.1", "--port", "0")  # TEST-NET-1: on no machine
    assert line.endswith("192.0.2.1:0: the address is not one of this machine's; choose another --host "
                         "(127.0.0.1, 0.0.0.0)")  # fmt: skip
    line = _refused(tmp_path / "c", "--host", "no-such-host.invalid", "--port", "0")
    assert "no-such-host.invalid:0: " in line and "--host" in line  # no such host, or no name server to ask
    line = _refused(tmp_path / "c", "--port", "1", prefix=_unprivileged())
    assert line.endswith("127.0.0.1:1: permission denied (ports below 1024 need privileges); choose another --port")


def test_settling_the_heap_freezes_what_exists_and_widens_the_youngest_generation():
    threshold = gc.get_threshold()
    try:
        settle_heap()
        assert gc.get_freeze_count() > 10_000  # the imported modules, app and all
        assert gc.get_threshold()[0] == GC_FIRST_GENERATION > threshold[0]
        assert gc.get_threshold()[1:] == threshold[1:]
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
