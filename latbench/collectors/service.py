"""Running the collector: open and migrate the store, make sure an admin token exists, build artifacts in the
background, and serve HTTP with uvicorn until SIGTERM or SIGINT, which shut it down cleanly.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import socket
import ssl
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from types import FrameType

import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI

from latbench.agents.downloads import MAX_CACHE_BYTES
from latbench.artifacts import REFERENCE_KEY, ArtifactCache
from latbench.collectors import artifact_store, metrics_api, tokens
from latbench.collectors.adaptive import Acquirer, AdaptiveWorker
from latbench.collectors.app import create_app
from latbench.collectors.context import Catalog, Collector
from latbench.collectors.db import Store, unopened, utcnow
from latbench.collectors.limits import BODY_TIMEOUT_S, HEADER_TIMEOUT_S, KEEP_ALIVE_S, limited_http
from latbench.collectors.migrations import upgrade
from latbench.collectors.privacy import private_dir, private_store
from latbench.collectors.workers import (
    DB_ENV,
    Workers,
    listening_socket,
    owner_socket,
    watch_owner,
    worker_options,
)
from latbench.errors import LatbenchError
from latbench.paths import latbench_home
from latbench.protocol import MAX_MODEL_BYTES

ADMIN_TOKEN_ENV = "LATBENCH_ADMIN_TOKEN"
GRACEFUL_SHUTDOWN_S = 10
GC_FIRST_GENERATION = 20_000
"""Allocations between collections of the youngest generation (Python's default is 700)."""
log = logging.getLogger(__name__)


def default_data_dir() -> Path:
    """``$LATBENCH_HOME/collector``, with ``LATBENCH_HOME`` defaulting to ``~/.local/share/latbench``."""
    return latbench_home() / "collector"


@contextlib.contextmanager
def running(
    db_url: str,
    artifacts_dir: Path,
    *,
    catalog: Catalog,
    lease_ttl_s: float = 60.0,
    retry_after_s: float = 2.0,
    admin_token: str | None = None,
    clock: Callable[[], datetime] = utcnow,
    models_dir: Path | None = None,
    max_model_bytes: int = MAX_MODEL_BYTES,
    body_timeout_s: float = BODY_TIMEOUT_S,
    acquirer: Acquirer | None = None,
    metrics_public: bool = False,
    artifact_cache_bytes: int = MAX_CACHE_BYTES,
) -> Iterator[tuple[FastAPI, str | None]]:
    """The app over a migrated store, with its artifact builder running until the block ends; ``catalog``
    supplies the dashboard's datasets and predictors (``latbench.catalog.DatasetCatalog``), ``acquirer`` the
    adaptive campaigns' acquisition (``latbench.catalog.PredictorAcquirer``; without one, and without
    ``models_dir`` to save their predictors in, adaptive campaigns measure their first batch only);
    ``metrics_public`` serves ``/metrics`` without a token; ``artifact_cache_bytes`` bounds ``artifacts_dir``.

    Yields the app and the admin token generated for a store that had none (``None`` otherwise, and always
    when ``admin_token`` is given: that one is stored instead).
    """
    store = Store(db_url)
    try:
        try:
            before, after = upgrade(store.engine)
        except sa.exc.OperationalError as exc:  # the first connection: a server down, a wrong password or path
            raise unopened(db_url, exc) from exc
        if before is None:
            log.info("created the store at schema revision %s", after)
        elif before != after:
            log.warning("migrated the store from schema revision %s to %s (one-way: collectors of an older latbench "
                        "stop serving it)", before, after)  # fmt: skip
        now = clock()
        with store.write() as session:
            generated = tokens.bootstrap_admin(session, admin_token, now)
            artifact_store.request(session, [REFERENCE_KEY], now)
        builder = artifact_store.ArtifactBuilder(
            store, ArtifactCache(artifacts_dir), clock, cache_bytes=artifact_cache_bytes
        )
        builder.start()
        stepper = None
        if acquirer is not None and models_dir is not None:
            stepper = AdaptiveWorker(store, acquirer, models_dir, clock, builder.wake)
            stepper.start()
        try:
            collector = Collector(
                store,
                artifacts_dir,
                catalog,
                lease_ttl_s,
                retry_after_s,
                clock,
                builder.wake,
                models_dir,
                max_model_bytes,
                artifact_cache_bytes,
            )
            yield create_app(collector, body_timeout_s, metrics_public=metrics_public), generated
        finally:
            if stepper is not None:
                stepper.stop()
            builder.stop()
    finally:
        store.close()


def settle_heap() -> None:
    """Keep the cycle collector out of request latency, once the app is up.

    Under load every request allocates thousands of objects, and those still in flight when a collection runs
    survive it, so full collections came every second or two, each scanning every object of the imported
    modules with all threads stopped (60-160 ms under load: most of the tail of push latency). What exists
    now lives as long as the process, so it is frozen out of later collections; and a larger first
    generation lets most of a request's objects die by reference count before any collection sees them.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_FIRST_GENERATION, *gc.get_threshold()[1:])


def check_tls(cert: Path | None, key: Path | None) -> None:
    """Refuse a half or unusable TLS configuration with a clear error before anything starts."""
    if (cert is None) != (key is None):
        raise LatbenchError("give both --tls-cert and --tls-key, or neither")
    if cert is None or key is None:
        return
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise LatbenchError(f"cannot use TLS certificate {cert} with key {key}: {exc}") from None


def server_config(
    app: FastAPI,
    host: str,
    port: int,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    header_timeout_s: float = HEADER_TIMEOUT_S,
) -> uvicorn.Config:
    """uvicorn as the collector runs it: HTTPS with ``tls_cert`` and ``tls_key``, and the limits of
    ``latbench.collectors.limits`` on headers, idle connections and slow clients."""
    check_tls(tls_cert, tls_key)
    return uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S, http=limited_http(header_timeout_s=header_timeout_s),
        timeout_keep_alive=KEEP_ALIVE_S, ssl_certfile=tls_cert, ssl_keyfile=tls_key,
    )  # fmt: skip


class _Server(uvicorn.Server):
    """Says where it listens once its sockets are bound (port 0 shows the port the system chose); a worker
    process (``announce`` off) stays quiet, its owner has said it."""

    def __init__(self, config: uvicorn.Config, announce: str | None) -> None:
        super().__init__(config)
        self.announce = announce

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.announce is not None:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            scheme = "https" if self.config.is_ssl else "http"
            print(f"collector listening on {scheme}://{host}:{port}{self.announce}", file=sys.stderr, flush=True)


def serve(
    catalog: Catalog,
    acquirer: Acquirer | None = None,
    db_url: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8700,
    data_dir: Path | None = None,
    lease_ttl_s: float = 60.0,
    retry_after_s: float = 2.0,
    artifacts_dir: Path | None = None,
    workers: int = 1,
    join_port: bool = False,
    max_model_mb: float = MAX_MODEL_BYTES / 2**20,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    artifact_cache_mb: float = MAX_CACHE_BYTES / 2**20,
) -> None:
    """Serve until SIGTERM or SIGINT. The default store is ``collector.sqlite`` and the default artifacts
    directory ``artifacts/``, both in ``data_dir``; replicas (or test runs) may share one artifacts directory.
    The dashboard's predictors are read from ``data_dir/models``. ``workers`` above 1 serves from that many
    processes (see ``latbench.collectors.workers``); ``join_port`` makes this process one of another's;
    ``max_model_mb`` limits uploaded model files, ``artifact_cache_mb`` the artifacts directory; ``tls_cert``
    and ``tls_key`` (PEM files) serve HTTPS. The first process steps adaptive campaigns with ``acquirer`` and
    saves their predictors among the dashboard's.
    ``LATBENCH_METRICS_PUBLIC=1`` in the environment serves ``/metrics`` without a token."""
    check_tls(tls_cert, tls_key)
    if workers < 1:
        raise LatbenchError(f"--workers must be at least 1, got {workers}")
    if not max_model_mb > 0:
        raise LatbenchError(f"--max-model-mb must be positive, got {max_model_mb}")
    if not artifact_cache_mb > 0:
        raise LatbenchError(f"--artifact-cache-mb must be positive, got {artifact_cache_mb}")
    admin_token = os.environ.get(ADMIN_TOKEN_ENV)
    if admin_token is not None:
        tokens.check_strength(admin_token)  # before the store is created: a refused start leaves nothing behind
    metrics_public = metrics_api.public_from_env(os.environ.get(metrics_api.PUBLIC_ENV))  # workers inherit it
    # Bound before anything is written, so that a port this process cannot have fails before a first start creates
    # the store and spends its one-time admin token; uvicorn serves on this socket, with no bind of its own to fail.
    sock = None if join_port else owner_socket(host, port, workers)
    try:
        data_dir = private_dir(data_dir or default_data_dir())
        if join_port:
            db_url = db_url or os.environ.get(DB_ENV)
        db_url = private_store(db_url or f"sqlite:///{data_dir / 'collector.sqlite'}")
        artifacts_dir = private_dir(artifacts_dir or data_dir / "artifacts")
        with running(
            db_url,
            artifacts_dir,
            catalog=catalog,
            lease_ttl_s=lease_ttl_s,
            retry_after_s=retry_after_s,
            admin_token=admin_token,
            models_dir=data_dir / "models",
            max_model_bytes=int(max_model_mb * 2**20),
            acquirer=None if join_port else acquirer,
            metrics_public=metrics_public,
            artifact_cache_bytes=int(artifact_cache_mb * 2**20),
        ) as (app, generated):
            if generated:
                print(f"admin token (shown once, store it): {generated}", file=sys.stderr, flush=True)
            config = server_config(app, host, port, tls_cert, tls_key)
            announce = None if join_port else (f" ({workers} worker processes)" if workers > 1 else "")
            server = _Server(config, announce)
            helpers = None
            if sock is not None and workers > 1:
                options = worker_options(
                    data_dir, artifacts_dir, lease_ttl_s, retry_after_s, max_model_mb, artifact_cache_mb
                )
                if tls_cert is not None and tls_key is not None:
                    options += ["--tls-cert", str(tls_cert), "--tls-key", str(tls_key)]
                helpers = Workers(workers - 1, sock, db_url, options).start()
            if sock is None:  # a worker: bound last, the kernel sends it connections from now on
                watch_owner(lambda: setattr(server, "should_exit", True))
                sock = listening_socket(host, port, shared=True)

            def stop(_signum: int, _frame: FrameType | None) -> None:
                if helpers is not None:
                    helpers.stopping.set()
                server.should_exit = True

            # uvicorn restores these after its own shutdown and re-sends the signal to them: stopping twice is a
            # no-op, where the default handlers would kill the process with the signal instead of letting it exit 0.
            previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
            settle_heap()
            try:
                server.run(sockets=[sock])
            finally:
                clean = helpers.stop(GRACEFUL_SHUTDOWN_S + 5) if helpers is not None else True
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
            if not clean:
                raise LatbenchError("a collector worker process did not stop cleanly")
    finally:
        if sock is not None:
            sock.close()
