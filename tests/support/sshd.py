"""A real OpenSSH server on a free loopback port, with its own host and user keys, started by the tests."""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.ports import free_port
from tests.support.processes import children

SSHD = Path("/usr/sbin/sshd")


@dataclass(frozen=True)
class Sshd:
    root: Path
    port: int
    user: str
    user_key: Path
    host_key_pub: Path
    known_hosts: Path
    """A known_hosts file that lists this server's host key."""

    @property
    def url(self) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}"


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


@contextlib.contextmanager
def sshd_server() -> Iterator[Sshd]:
    if not SSHD.exists():
        raise RuntimeError("sshd not found: apt-get install openssh-server (scripts/test-deps.sh does)")
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    root = Path(tempfile.mkdtemp(prefix="latbench-sshd-"))
    port = free_port()
    _keygen(root / "hostkey")
    _keygen(root / "userkey")
    shutil.copy(root / "userkey.pub", root / "authorized_keys")
    (root / "authorized_keys").chmod(0o600)
    host_key = (root / "hostkey.pub").read_text().split()
    (root / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    (root / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root / 'hostkey'}\nPidFile {root / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {root / 'authorized_keys'}\nPubkeyAuthentication yes\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\n"
        "Subsystem sftp internal-sftp\nMaxSessions 50\nMaxStartups 50\nLogLevel ERROR\n"
    )
    subprocess.run([str(SSHD), "-t", "-f", str(root / "sshd_config")], check=True, capture_output=True)
    subprocess.run([str(SSHD), "-f", str(root / "sshd_config"), "-E", str(root / "sshd.log")], check=True)
    pid_file = root / "sshd.pid"
    deadline = time.monotonic() + 10
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield Sshd(root, port, getpass.getuser(), root / "userkey", root / "hostkey.pub", root / "known_hosts")
    finally:
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGTERM)
        shutil.rmtree(root, ignore_errors=True)


def _master(server: Sshd) -> int:
    return int((server.root / "sshd.pid").read_text())


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def ended(pid: int) -> bool:
    """Gone, or a zombie: this sandbox's init does not reap the orphans a killed sshd leaves."""
    try:
        return "State:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True


def drop_connections(server: Sshd) -> None:
    """Kill sshd's per-connection processes, as a network drop or a reboot ends them: the commands they started
    on the device see their input end."""
    connections = children(_master(server))
    assert connections, "no connection to drop"
    for pid in connections:
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not set(connections) & set(children(_master(server))))


def stop_server(server: Sshd) -> None:
    """The device goes away: sshd and every connection it serves."""
    master = _master(server)
    connections = children(master)
    os.kill(master, signal.SIGTERM)
    for pid in connections:
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: ended(master))


def start_server(server: Sshd) -> None:
    """The device is back, on the same port with the same host key."""
    (server.root / "sshd.pid").unlink(missing_ok=True)
    config, log = server.root / "sshd_config", server.root / "sshd.log"
    subprocess.run([str(SSHD), "-f", str(config), "-E", str(log)], check=True)
    wait_until(lambda: (server.root / "sshd.pid").exists())
