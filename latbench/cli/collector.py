"""``latbench collector serve``: run the collector service (HTTP API, store, artifact builder) in the foreground;
``latbench collector backup``: a consistent copy of its SQLite store, while it runs; ``latbench collector
prune``: delete the artifact files no campaign needs any more, while it runs."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from urllib.parse import urlsplit

import typer

from latbench.cli import options as opt
from latbench.cli.console import err, styled
from latbench.cli.logs import log_to_stderr

collector_app = typer.Typer(help="Run the collector that agents lease work from.", no_args_is_help=True)
ARTIFACT_CACHE_ENV = "LATBENCH_ARTIFACT_CACHE_MB"


def _typed_password(value: str | None) -> str | None:
    """Warn (and go on) when the ``--db`` URL holds a password, which every user of the machine sees in ``ps``:
    PostgreSQL reads one from ``PGPASSWORD`` or ``~/.pgpass`` instead."""
    try:
        password = urlsplit(value).password if value else None
    except ValueError:  # not a URL: the store says so when it opens it
        password = None
    if password:
        hint = "visible to other users (ps); leave it out and set PGPASSWORD or use ~/.pgpass"
        err.print(styled("warning:", "yellow", f"the --db URL holds a password, {hint}"))
    return value


def _plain_http_beyond_loopback(host: str, tls: bool) -> None:
    """Warn (and go on: a TLS-terminating proxy in front is fine) when tokens would cross a network in clear."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        loopback = False
    if not tls and not loopback:
        hint = "serve HTTPS (--tls-cert, --tls-key) or put a TLS-terminating proxy in front"
        err.print(styled("warning:", "yellow", f"plain HTTP on {host}: every token travels readable; {hint}"))


@collector_app.command("serve")
def serve(
    db: str | None = typer.Option(
        None,
        "--db",
        callback=_typed_password,
        help="Database URL: sqlite:///FILE or postgresql+psycopg://... (its password from PGPASSWORD or ~/.pgpass).",
        show_default="collector.sqlite in the data dir",
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8700, "--port", min=0, max=65535, help="Port to listen on (0: any free port)."),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Store and artifacts directory.", show_default="$LATBENCH_HOME/collector"
    ),
    lease_ttl: float = typer.Option(60.0, "--lease-ttl", min=1.0, help="Seconds a lease lives without a heartbeat."),
    retry_after: float = typer.Option(
        2.0, "--retry-after", min=0.1, help="Seconds an agent that got no job waits before asking again."
    ),
    artifacts_dir: Path | None = typer.Option(
        None, "--artifacts-dir", help="Where built models live (replicas may share one).", show_default="DIR/artifacts"
    ),
    workers: int = typer.Option(
        1, "--workers", min=1, max=64, help="Processes serving requests (more than one core's worth of agents; Linux)."
    ),
    max_model_mb: float = typer.Option(
        512.0, "--max-model-mb", min=0.001, help="Largest model file an admin may upload for a campaign, in MiB."
    ),
    tls_cert: Path | None = typer.Option(
        None, "--tls-cert", help="Serve HTTPS with this certificate (PEM; with its chain), with --tls-key."
    ),
    tls_key: Path | None = typer.Option(None, "--tls-key", help="The private key of --tls-cert (PEM)."),
    join_port: bool = typer.Option(
        False, "--join-port", hidden=True, help="Serve as a worker on the port another collector process listens on."
    ),
    artifact_cache_mb: float = typer.Option(
        2048.0,
        "--artifact-cache-mb",
        min=1.0,
        envvar=ARTIFACT_CACHE_ENV,
        show_envvar=True,
        help="Largest size of the artifacts directory, a cache of the store's files (least recently used go), in MiB.",
    ),
) -> None:
    """Serve until SIGTERM or Ctrl-C. On first start, prints an admin token once unless LATBENCH_ADMIN_TOKEN is set.

    Anywhere but on 127.0.0.1, serve HTTPS (--tls-cert, --tls-key): tokens travel in every request. GET /metrics
    needs a metrics or admin token; LATBENCH_METRICS_PUBLIC=1 serves it without one (a scraper on a private
    network)."""
    from latbench.catalog import DatasetCatalog, PredictorAcquirer
    from latbench.collectors.service import serve as run

    log_to_stderr(verbose=False)  # timestamped INFO lines: store outages and their end, migrations, the audit trail
    if not join_port:
        _plain_http_beyond_loopback(host, tls_cert is not None)
    run(
        DatasetCatalog(),
        PredictorAcquirer(),
        db_url=db,
        host=host,
        port=port,
        data_dir=data_dir,
        lease_ttl_s=lease_ttl,
        retry_after_s=retry_after,
        artifacts_dir=artifacts_dir,
        workers=workers,
        join_port=join_port,
        max_model_mb=max_model_mb,
        tls_cert=tls_cert,
        tls_key=tls_key,
        artifact_cache_mb=artifact_cache_mb,
    )


def _store_url(data_dir: Path | None, db: str | None) -> str:
    """The store ``--db`` names, or the one in ``--data-dir`` (default: the collector's own)."""
    from latbench.collectors.service import default_data_dir

    if db is not None and data_dir is not None:
        raise typer.BadParameter("give --data-dir or --db, not both")
    return db or f"sqlite:///{(data_dir or default_data_dir()) / 'collector.sqlite'}"


@collector_app.command("backup")
def backup(
    out: Path = typer.Argument(..., help="The new file to write the copy to (mode 0600)."),
    data_dir: Path | None = typer.Option(
        None,
        "--data-dir",
        help="The data dir of a SQLite store (collector.sqlite in it).",
        show_default="$LATBENCH_HOME/collector",
    ),
    db: str | None = typer.Option(None, "--db", help="The store's URL instead: sqlite:///FILE (PostgreSQL: pg_dump)."),
) -> None:
    """Copy the collector's SQLite store to OUT as of one moment, safely while it serves; prints OUT.

    Copying collector.sqlite itself while the collector runs misses what its -wal file holds. A PostgreSQL store is
    backed up with pg_dump (exit 2, with the command)."""
    from latbench.collectors.backup import BackupUnsupported
    from latbench.collectors.backup import backup as copy

    url = _store_url(data_dir, db)
    try:
        print(copy(url, out))
    except BackupUnsupported as exc:
        err.print(styled("error:", "red", str(exc)), highlight=False)
        raise typer.Exit(2) from None


@collector_app.command("prune")
def prune(
    data_dir: Path | None = typer.Option(
        None,
        "--data-dir",
        help="The data dir of a SQLite store (collector.sqlite in it) and of its artifacts directory.",
        show_default="$LATBENCH_HOME/collector",
    ),
    db: str | None = typer.Option(
        None,
        "--db",
        callback=_typed_password,
        help="The store's URL instead: sqlite:///FILE or postgresql+psycopg://...",
    ),
    artifacts_dir: Path | None = typer.Option(
        None,
        "--artifacts-dir",
        help="The artifacts directory to prune too.",
        show_default="DIR/artifacts, none with --db",
    ),
    uploads: bool = typer.Option(False, "--uploads", help="Prune uploaded model files too (they cannot be rebuilt)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Change nothing: say what would be freed."),
    as_json: opt.AsJson = False,
) -> None:
    """Delete the artifact files of finished and cancelled campaigns that no other campaign measures, from the
    store and the artifacts directory, safely while collectors serve; prints one line on stderr.

    Results and artifact rows stay. Uploaded model files are kept unless --uploads. A pruned artifact asked for
    again is built again (uploaded ones must be uploaded again). Other replicas drop pruned files from their
    artifacts directories within 10 minutes."""
    from latbench.collectors import prune as pruning
    from latbench.collectors.db import utcnow
    from latbench.collectors.service import default_data_dir

    url = _store_url(data_dir, db)
    if artifacts_dir is None and db is None:
        artifacts_dir = (data_dir or default_data_dir()) / "artifacts"
    dirs = [artifacts_dir] if artifacts_dir is not None and artifacts_dir.is_dir() else []
    store = pruning.open_store(url)
    try:
        done = pruning.prune(store, utcnow(), dirs, uploads=uploads, dry_run=dry_run)
    finally:
        store.close()
    err.print(done.summary(), highlight=False)
    if as_json:
        print(json.dumps(done.as_dict()))
