"""Real servers for tests: a PostgreSQL cluster on a private loopback port, started and stopped by the tests."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.support.ports import free_port


def pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found: apt-get install postgresql (.ci/run does)")
    return Path(found[-1]).parent


def _as_postgres(args: list[str]) -> list[str]:
    """Run PostgreSQL tools as the postgres user when we are root (initdb refuses to run as root)."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class Cluster:
    """A throwaway PostgreSQL cluster on a free loopback port (database ``postgres``, trust auth); ``restart``
    and ``stop``/``start`` make the outages the fault tests need."""

    def __init__(self) -> None:
        binaries = pg_bin()
        self.root = Path(tempfile.mkdtemp(prefix="latbench-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        os.chmod(self.root, 0o700)
        port = free_port()
        data = self.root / "data"
        subprocess.run(
            _as_postgres([str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                          "--no-sync"]),
            check=True, capture_output=True,
        )  # fmt: skip
        self.options = f"-p {port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self.ctl = [str(binaries / "pg_ctl"), "-D", str(data), "-l", str(self.root / "server.log")]
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"

    def _pg_ctl(self, *args: str, check: bool = True) -> None:
        subprocess.run(_as_postgres([*self.ctl, *args]), check=check, capture_output=True)

    def start(self) -> None:
        self._pg_ctl("-o", self.options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server (``immediate``: as a crash would, every connection dropped at once)."""
        self._pg_ctl("-m", mode, "-w", "stop", check=False)

    def restart(self) -> None:
        """``pg_ctl restart -m immediate``: every session (and its advisory locks) ends, the data stays."""
        self._pg_ctl("-m", "immediate", "-o", self.options, "-w", "-t", "60", "restart")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def postgres_cluster() -> Iterator[Cluster]:
    """A started ``Cluster``, removed when the block ends."""
    cluster = Cluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster; yields its SQLAlchemy URL (database ``postgres``, trust auth)."""
    with postgres_cluster() as cluster:
        yield cluster.url


def create_database(server_url: str, name: str) -> str:
    """A new empty database on the server at ``server_url``; returns its URL."""
    import sqlalchemy as sa

    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"
