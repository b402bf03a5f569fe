"""More collector processes on one port, for more than one core's worth of requests.

A collector process runs Python on one core at a time, so under many agents its requests queue behind each
other long before the machine is busy. ``--workers N`` starts N-1 more processes over the same store and
artifacts directory, each listening on the first one's port with its own socket (``SO_REUSEPORT``): the kernel
spreads new connections evenly over the sockets. Accepting from one shared socket instead let whichever
process woke first take the connections of a burst (one run gave one process 705 of 750 pushes, the other 45,
and doubled the median push latency). The processes share nothing else: what each caches never changes once
written (campaigns, device memberships), and their artifact builders take turns through the store's build lock.
The first process owns the others: it starts them once the store is migrated, starts a new one in place of one
that dies (connections waiting in a dead worker's queue are reset; agents retry), and stops them when it stops;
one whose owner is gone stops by itself.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from latbench.errors import LatbenchError

OWNER_ENV = "LATBENCH_COLLECTOR_OWNER"
"""The process id of a worker's owner, so a worker whose owner died while it was starting still notices."""
DB_ENV = "LATBENCH_COLLECTOR_DB"
"""The store URL of a worker process: passed in its environment, since a URL on a command line (which ``ps``
shows every user) may hold a password."""
RESTART_LIMIT = 5
"""Worker deaths within ``RESTART_WINDOW_S`` of their start after which the owner stops replacing them."""
RESTART_WINDOW_S = 10.0
BACKLOG = 2048
"""Connections a listening socket queues before the process accepts them (uvicorn's default)."""


SPREADS_CONNECTIONS = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")
"""Whether the kernel spreads connections over sockets sharing a port (Linux); elsewhere one process serves."""


def listening_socket(host: str, port: int, *, shared: bool = False) -> socket.socket:
    """A socket listening on ``host:port``; one this process cannot have is a ``LatbenchError`` saying why and
    which option to change. ``shared``: one the other processes of this collector listen on too (the owner's
    first, so ``port`` 0 becomes one port that the workers then join)."""
    if shared and not SPREADS_CONNECTIONS:
        raise LatbenchError("--workers above 1 needs Linux, whose kernel spreads connections over the processes")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=BACKLOG, reuse_port=shared)
    except OSError as exc:
        raise LatbenchError(f"cannot listen on {_address(host, port)}: {_remedy(exc)}") from None


def owner_socket(host: str, port: int, workers: int) -> socket.socket:
    """The socket of a collector's first process, shared with its workers when there are any. It is first bound
    alone: a shared socket would join another collector's shared port (same user) instead of failing."""
    sock = listening_socket(host, port)
    if workers == 1:
        return sock
    with sock:
        port = sock.getsockname()[1]
    return listening_socket(host, port, shared=True)


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _remedy(exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return "the port is in use (another collector?); stop what listens there or choose another --port"
    if exc.errno == errno.EACCES:
        return "permission denied (ports below 1024 need privileges); choose another --port"
    if exc.errno == errno.EADDRNOTAVAIL:
        return "the address is not one of this machine's; choose another --host (127.0.0.1, 0.0.0.0)"
    if exc.errno == socket.EAI_NONAME:
        return "no such host; choose another --host (127.0.0.1, 0.0.0.0)"
    return f"{exc.strerror or exc}; check --host and --port"


def watch_owner(on_orphaned: Callable[[], None], every_s: float = 1.0) -> None:
    """Call ``on_orphaned`` once this process's owner is gone (killed, even with SIGKILL)."""
    owner = int(os.environ.get(OWNER_ENV) or os.getppid())

    def watch() -> None:
        while os.getppid() == owner:
            time.sleep(every_s)
        on_orphaned()

    threading.Thread(target=watch, name="owner-watch", daemon=True).start()


class Workers:
    """The extra worker processes of one collector, kept running until ``stop``."""

    def __init__(self, count: int, sock: socket.socket, db_url: str, options: list[str]) -> None:
        host, port = sock.getsockname()[:2]
        self.count, self.db_url = count, db_url
        self.options = [*options, "--host", host, "--port", str(port), "--join-port"]
        self.procs: list[subprocess.Popen[bytes]] = []
        self.started: list[float] = []
        self.stopping = threading.Event()
        self._quick_deaths = 0
        self._watcher = threading.Thread(target=self._watch, name="workers", daemon=True)

    def _spawn(self) -> tuple[subprocess.Popen[bytes], float]:
        command = [sys.executable, "-m", "latbench", "collector", "serve", *self.options]
        env = {**os.environ, DB_ENV: self.db_url, OWNER_ENV: str(os.getpid())}
        return subprocess.Popen(command, env=env), time.monotonic()

    def start(self) -> Workers:
        for _ in range(self.count):
            proc, started = self._spawn()
            self.procs.append(proc)
            self.started.append(started)
        self._watcher.start()
        return self

    def _watch(self) -> None:
        """Replace a worker that exits while the collector runs, unless workers keep dying right after start."""
        while not self.stopping.wait(0.5):
            for i, proc in enumerate(self.procs):
                if proc.poll() is None or self.stopping.is_set():
                    continue
                quick = time.monotonic() - self.started[i] < RESTART_WINDOW_S
                self._quick_deaths = self._quick_deaths + 1 if quick else 0
                if self._quick_deaths >= RESTART_LIMIT:
                    print(f"collector worker exited with {proc.returncode} {RESTART_LIMIT} times in a row right "
                          "after starting; not starting it again", file=sys.stderr, flush=True)  # fmt: skip
                    return
                print(f"collector worker {proc.pid} exited with {proc.returncode}; starting another",
                      file=sys.stderr, flush=True)  # fmt: skip
                self.procs[i], self.started[i] = self._spawn()

    def stop(self, timeout_s: float) -> bool:
        """Stop every worker (SIGTERM, then SIGKILL after ``timeout_s``); say whether all exited cleanly."""
        self.stopping.set()
        if self._watcher.is_alive():
            self._watcher.join()
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        clean = True
        for proc in self.procs:
            try:
                code = proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
            # A worker that already got the terminal's Ctrl-C itself exits 0 as well; one still starting up (its
            # handlers not installed yet) dies of the SIGTERM, before it served anything.
            clean = clean and code in (0, -signal.SIGTERM)
        return clean


def worker_options(
    data_dir: Path,
    artifacts_dir: Path,
    lease_ttl_s: float,
    retry_after_s: float,
    max_model_mb: float,
    artifact_cache_mb: float,
) -> list[str]:
    """The ``collector serve`` options that make a worker serve what its owner serves."""
    return ["--data-dir", str(data_dir), "--artifacts-dir", str(artifacts_dir), "--lease-ttl", repr(lease_ttl_s),
            "--retry-after", repr(retry_after_s), "--max-model-mb", repr(max_model_mb),
            "--artifact-cache-mb", repr(artifact_cache_mb)]  # fmt: skip
