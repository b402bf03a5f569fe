"""Artifacts on the collector: rows for the ones campaigns need, a background builder, and lookup for serving.

Campaign creation only records which artifacts it needs, in the format its runtime loads (``onnx``, ``tflite``,
``fp16.tflite``, ``torch.json``); a thread in the collector process exports them one by one (oldest request
first) into an ``ArtifactCache``, then records each file's SHA-256 and size, with the file itself in the store
(``blobs``), so any replica serves it. A job becomes leasable once its artifact has a SHA-256, so a large
campaign starts measuring while the rest still builds.

An artifact pruned once no campaign needed it (``latbench.collectors.prune``) keeps its row and hash; asked for
again, by a new campaign or by an agent holding a job on it (which gets 503 ``artifact_rebuilding`` meanwhile, and
retries), it is built again, most recently asked first, and served once its bytes hash as before.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TextIO

import sqlalchemy as sa
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from latbench.agents.downloads import MAX_CACHE_BYTES
from latbench.artifacts import FORMATS, LITERT_FORMATS, REFERENCE_KEY, Artifact, ArtifactCache, ArtifactKey
from latbench.collectors import blobs
from latbench.collectors.db import CACHE_INFO, Store, insert_new, is_outage, outage_reason
from latbench.collectors.models import ArtifactRow, CampaignArchRow, CampaignRow
from latbench.collectors.uploads import MODELS_DIR
from latbench.errors import ArtifactError, LatbenchError, NotFound, RequestRejected, one_line
from latbench.spaces import MODEL_SET

REFERENCE_DIGESTS = [REFERENCE_KEY.digest(fmt) for fmt in FORMATS]

MAX_ERROR_CHARS = 2000
LITERT_BATCH = 50
"""LiteRT artifacts of one format handed to one converter process (``ArtifactCache.iter_build``): its start and
imports cost about as much as one conversion. Each is recorded as soon as it is built."""
BUILDER_LOCK_KEY = 0x6C617462_0001
"""PostgreSQL advisory lock held by the one collector of a store that builds its artifacts."""
_HOLDS_LOCK = sa.text(
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted"
    " AND classid = CAST(:high AS oid) AND objid = CAST(:low AS oid) AND objsubid = 1)"
)
PARTIAL_PATTERNS = (".*.tmp", ".converting.*", f"{MODELS_DIR}/.*.part.*", f"{MODELS_DIR}/.*.tmp")
"""Files and directories a write in progress has in the artifacts directory (``ArtifactCache``, ``uploads``,
``blobs``)."""
STALE_PARTIAL_S = 600.0
TIDY_EVERY_S = 600.0
"""How often the builder removes stale partial files, besides when it starts."""
RECORD_RETRY_FIRST_S = 0.5
RECORD_RETRY_CAP_S = 5.0
"""Back-off between attempts to record a built artifact while the store cannot be reached."""
REQUEST_CHUNK = 10_000
"""Keys named in one statement: within SQLite's and PostgreSQL's limits on bound parameters."""
REBUILDABLE = sa.and_(blobs.PRUNED, ArtifactRow.space != MODEL_SET)
"""A pruned artifact the builder can make again: built from its key (an uploaded file cannot be)."""
log = logging.getLogger(__name__)


class ArtifactRebuilding(RequestRejected):
    """A pruned artifact asked for again: the builder is making it anew; ask again shortly (agents retry a 503)."""

    status = 503
    code = "artifact_rebuilding"


def request(session: Session, keys: Iterable[ArtifactKey], now: datetime, fmt: str = "onnx") -> None:
    """Record that ``keys`` are needed in format ``fmt``; those already known are left as they are, but for
    pruned ones, which the builder makes again."""
    rows = {
        key.digest(fmt): {"key_digest": key.digest(fmt), **asdict(key), "format": fmt, "requested_at": now}
        for key in keys
    }
    if rows:
        insert_new(session, ArtifactRow, list(rows.values()))
    digests = list(rows)
    for start in range(0, len(digests), REQUEST_CHUNK):
        chunk = digests[start : start + REQUEST_CHUNK]
        session.execute(update(ArtifactRow).where(ArtifactRow.key_digest.in_(chunk), REBUILDABLE).values(built_at=None))


def reference_sha256(session: Session, fmt: str = "onnx") -> str | None:
    """The hash of the reference artifact in format ``fmt`` once built; kept in the store's cache from then on,
    since it never changes."""
    cache = session.info.setdefault(CACHE_INFO, {}).setdefault("references", {})
    if cache.get(fmt) is None:
        cache[fmt] = session.scalar(
            select(ArtifactRow.sha256).where(ArtifactRow.key_digest == REFERENCE_KEY.digest(fmt))
        )
    return cache[fmt]


def artifact_path(session: Session, sha256: str, root: Path, max_bytes: int = MAX_CACHE_BYTES) -> Path:
    """The built or uploaded file whose content hashes to ``sha256``, copied from the store into ``root`` if this
    collector lacks it (another replica built it), after which ``root`` is kept within ``max_bytes``
    (``blobs.evict``); a file served from ``root`` counts as used now (its access time: its modification time
    stays, and with it the response's ``ETag``). ``ArtifactRebuilding`` for a pruned artifact that can be built
    again, ``NotFound`` for one that cannot (an upload, or a failed rebuild)."""
    rows = session.execute(
        select(ArtifactRow.file_name, ArtifactRow.space, ArtifactRow.error).where(ArtifactRow.sha256 == sha256)
    ).all()
    name = next((row.file_name for row in rows if row.file_name), None)
    if name is not None:
        path = root / name
        with contextlib.suppress(FileNotFoundError):  # not here, or evicted meanwhile: fetched below
            os.utime(path, ns=(time.time_ns(), path.stat().st_mtime_ns))
            return path
        if blobs.fetch(session, sha256, path):
            blobs.evict(root, max_bytes, keep=path)
            return path
    if name is not None or not rows:
        raise NotFound(f"no artifact with sha256 {sha256}")
    if all(row.space == MODEL_SET for row in rows):
        raise NotFound(f"the uploaded model {sha256} was pruned from the collector (latbench collector prune "
                       "--uploads): upload it again")  # fmt: skip
    failed = next((row.error for row in rows if row.error), None)
    if failed is not None:
        raise NotFound(f"artifact {sha256} was pruned and cannot be built again: {failed}")
    raise ArtifactRebuilding(f"artifact {sha256} was pruned; the collector is building it again: ask again shortly")


def serve(store: Store, sha256: str, root: Path, now: datetime, max_bytes: int = MAX_CACHE_BYTES) -> Path:
    """``artifact_path`` for a download. A pruned artifact asked for is marked as asked for now, so the builder
    makes it next: an agent holds a job on it (leased by a collector that knew it as built)."""
    try:
        with store.read() as session:
            return artifact_path(session, sha256, root, max_bytes)
    except ArtifactRebuilding:
        with store.write() as session:
            marked = update(ArtifactRow).where(ArtifactRow.sha256 == sha256, REBUILDABLE, ArtifactRow.error.is_(None))
            session.execute(marked.values(built_at=None, requested_at=now))
        raise


def remove_partial(root: Path, older_than_s: float = STALE_PARTIAL_S) -> list[Path]:
    """Remove what writes into ``root`` left half-done (a process killed mid-write) and nobody has touched for
    ``older_than_s``: files are written beside their place and moved into it whole, so these are never read,
    and one younger may still be written by a collector sharing the directory. Returns what was removed."""
    cutoff = time.time() - older_than_s
    removed = []
    for pattern in PARTIAL_PATTERNS:
        for path in root.glob(pattern):
            try:
                if path.lstat().st_mtime > cutoff:
                    continue
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
            except OSError:
                continue
            removed.append(path)
    return removed


def build_error(exc: Exception) -> str:
    """The one line a failed build leaves in the store (``LatbenchError`` messages as they are)."""
    return one_line(exc)[:MAX_ERROR_CHARS]


class ArtifactBuilder:
    """Builds requested artifacts in a background thread until stopped; ``wake`` says new ones are waiting.

    The reference artifact comes first, since no job can be leased without it; then pruned artifacts asked for
    again, most recently asked first (agents may be waiting for them); then the oldest request.

    An artifact whose build fails keeps its error in the store and is not tried again until the next start; one
    built while the store cannot be reached is recorded once it can (a database outage is no build failure).
    Every collector's builder, building or not, keeps its artifacts directory within ``cache_bytes`` and removes
    pruned files from it (``blobs.evict``, ``blobs.forget``).
    """

    def __init__(
        self,
        store: Store,
        cache: ArtifactCache,
        clock: Callable[[], datetime],
        idle_s: float = 5.0,
        cache_bytes: int = MAX_CACHE_BYTES,
    ):
        self.store = store
        self.cache = cache
        self.clock = clock
        self.idle_s = idle_s
        self.cache_bytes = cache_bytes
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._failed: set[str] = set()
        self._tidied = -TIDY_EVERY_S
        self._backfilled = False
        self._lock: TextIO | sa.Connection | None = None
        self._thread = threading.Thread(target=self._run, name="artifact-builder", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop after the build in progress, if any."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout_s)

    def _next(self) -> tuple[list[ArtifactKey], str] | None:
        """The next artifacts to build, all in one format: one, or up to ``LITERT_BATCH`` for LiteRT formats.
        An artifact that only cancelled campaigns measure is passed over (no job of theirs is leased again)."""
        measured_by = select(CampaignArchRow.campaign_id).where(
            CampaignArchRow.artifact_digest == ArtifactRow.key_digest
        )
        live = measured_by.join(CampaignRow, CampaignRow.id == CampaignArchRow.campaign_id).where(
            CampaignRow.cancelled_at.is_(None)
        )
        unbuilt = sa.and_(ArtifactRow.sha256.is_(None), sa.or_(~measured_by.exists(), live.exists()))
        again = sa.and_(blobs.WANTED, REBUILDABLE)
        with self.store.read() as session:
            rows = session.scalars(
                select(ArtifactRow)
                .where(sa.or_(unbuilt, again), ArtifactRow.key_digest.not_in(self._failed))
                .order_by(
                    ArtifactRow.key_digest.not_in(REFERENCE_DIGESTS),
                    ArtifactRow.sha256.is_(None),
                    sa.case((ArtifactRow.sha256.is_not(None), ArtifactRow.requested_at)).desc(),
                    ArtifactRow.requested_at,
                    ArtifactRow.key_digest,
                )
                .limit(LITERT_BATCH)
            ).all()
        if not rows:
            return None
        fmt = rows[0].format
        same = itertools.takewhile(lambda row: row.format == fmt, rows if fmt in LITERT_FORMATS else rows[:1])
        return [ArtifactKey(r.space, r.arch, r.batch, r.resolution, r.classes, r.opset, r.seed) for r in same], fmt

    def _build(self, keys: list[ArtifactKey], fmt: str) -> None:
        """Build artifacts (``ArtifactCache.iter_build``), recording each as soon as it is done; stop between
        two if asked to, or once another collector owns the builds. Any exception from building counts, not only
        the expected ones: a bug in an exporter fails the keys not yet done rather than leave the builder
        retrying them forever while the campaign waits. A store that cannot be reached is no build failure:
        ``_record`` waits for it."""
        results = self.cache.iter_build(keys, fmt)
        done: set[ArtifactKey] = set()
        try:
            while not self._stop.is_set():
                try:
                    key, result = next(results)
                except StopIteration:
                    return
                except Exception as exc:
                    for key in keys:
                        if key not in done and not self._record(key, fmt, exc):
                            return
                    return
                if not self._record(key, fmt, result):
                    return
                done.add(key)
        finally:
            results.close()

    def _record(self, key: ArtifactKey, fmt: str, result: Artifact | Exception) -> bool:
        """Record an artifact's hash, or its error (campaign status reports a failed build, and the campaign's
        jobs on it count as failed); say whether it was recorded. Nothing is recorded once another collector
        owns the builds (it builds the artifact again); while the store cannot be reached, the write is retried
        with back-off until it succeeds or the builder stops. Only a recorded failure keeps the key from being
        built again."""
        if isinstance(result, Exception):
            if isinstance(result, LatbenchError):
                log.error("cannot build the %s artifact of %s %r: %s", fmt, key.space, key.arch, result)
            else:
                log.error("building the %s artifact of %s %r failed", fmt, key.space, key.arch, exc_info=result)
            values: dict[str, object] = {"error": build_error(result)}
        else:
            values = {
                "sha256": result.sha256,
                "size": result.path.stat().st_size,
                "file_name": result.path.name,
                "built_at": self.clock(),
                "error": None,
            }
        delay_s = RECORD_RETRY_FIRST_S
        while True:
            try:
                if not self._owner():
                    return False
                with self.store.write() as session:
                    statement = update(ArtifactRow).where(ArtifactRow.key_digest == key.digest(fmt))
                    if not isinstance(result, Exception):
                        result = self._as_before(session, key.digest(fmt), result)
                    if isinstance(result, Exception):
                        values = {"error": build_error(result)}
                    else:
                        blobs.put(session, result.sha256, result.path)
                    session.execute(statement.values(**values))
                break
            except sa.exc.DBAPIError as exc:
                if not is_outage(exc):
                    raise
                log.warning("cannot record the %s artifact of %s %r: the store is unreachable (%s); retrying in "
                            "%.1f s", fmt, key.space, key.arch, outage_reason(exc), delay_s)  # fmt: skip
            if self._stop.wait(delay_s):
                return False
            delay_s = min(delay_s * 2, RECORD_RETRY_CAP_S)
        if isinstance(result, Exception):
            self._failed.add(key.digest(fmt))
        return True

    @staticmethod
    def _as_before(session: Session, digest: str, built: Artifact) -> Artifact | ArtifactError:
        """``built``, or the error of a pruned artifact built again with other bytes than before (another torch
        or onnx): served, it would be measured under a hash that results measured on the old bytes name, and
        jobs leased with the old hash could never download it."""
        before = session.scalar(select(ArtifactRow.sha256).where(ArtifactRow.key_digest == digest))
        if before is None or before == built.sha256:
            return built
        log.error("the %s artifact of %s %r was built again with other bytes (sha256 %s, was %s)", built.format,
                  built.key.space, built.key.arch, built.sha256, before)  # fmt: skip
        return ArtifactError(f"built again, its bytes hash to {built.sha256}: the exporter changed since it was pruned")

    def _owner(self) -> bool:
        """Whether this builder owns its store's builds: collectors sharing one store (replicas) build one at a
        time, and another takes over when the owner stops. PostgreSQL: a session advisory lock held on a
        connection of its own, checked again every time (a database restart ends the session and its lock, and
        another collector may take it); SQLite: ``flock`` on a file beside the database."""
        if isinstance(self._lock, sa.Connection) and not self._holds(self._lock):
            log.warning("this collector lost the artifact build lock (did the database restart?)")
            self._release()
        if self._lock is not None:
            return True
        engine = self.store.engine
        if engine.dialect.name == "postgresql":
            connection = engine.connect()
            try:
                owned = connection.scalar(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": BUILDER_LOCK_KEY})
                connection.commit()
            except BaseException:
                connection.close()
                raise
            if not owned:
                connection.close()
                return False
            self._lock = connection
            return True
        try:
            handle = Path(f"{engine.url.database}.builder-lock").open("a")  # noqa: SIM115 (held until stop)
        except OSError:
            return True  # a store beside an unwritable directory: nothing to share it with
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._lock = handle
        return True

    @staticmethod
    def _holds(connection: sa.Connection) -> bool:
        """Whether ``connection``'s session still holds the build lock: asked of ``pg_locks``, since SQLAlchemy
        quietly reconnects a connection the server dropped, and the new session holds nothing."""
        try:
            held = bool(
                connection.scalar(_HOLDS_LOCK, {"high": BUILDER_LOCK_KEY >> 32, "low": BUILDER_LOCK_KEY & 0xFFFFFFFF})
            )
            connection.rollback()
        except sa.exc.SQLAlchemyError:
            return False
        return held

    def _release(self) -> None:
        if isinstance(self._lock, sa.Connection):
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                self._lock.scalar(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": BUILDER_LOCK_KEY})
        if self._lock is not None:
            with contextlib.suppress(sa.exc.SQLAlchemyError, OSError):
                self._lock.close()
        self._lock = None

    def _backfill(self) -> None:
        stored = blobs.backfill(self.store, self.cache.root)
        if stored:
            log.info("kept %d artifact file(s) built before the store kept them in the store", stored)
        self._backfilled = True

    def _tidy(self) -> None:
        if time.monotonic() < self._tidied + TIDY_EVERY_S:
            return
        self._tidied = time.monotonic()
        removed = remove_partial(self.cache.root)
        if removed:
            log.info("removed %d partial file(s) left in %s by an interrupted write", len(removed), self.cache.root)
        with self.store.read() as session:
            forgotten = blobs.forget(session, self.cache.root)
        if forgotten:
            log.info("removed %d pruned artifact file(s) from %s", len(forgotten), self.cache.root)
        blobs.evict(self.cache.root, self.cache_bytes)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._tidy()
                    owner = self._owner()
                    if owner and not self._backfilled:
                        self._backfill()
                    todo = self._next() if owner else None
                    if todo is not None:
                        self._build(*todo)
                        blobs.evict(self.cache.root, self.cache_bytes)
                        continue
                except sa.exc.DBAPIError as exc:
                    if not is_outage(exc):
                        log.exception("the artifact builder failed; retrying in %.0f s", self.idle_s)
                    else:
                        log.warning("the store is unreachable (%s); building again in %.0f s", outage_reason(exc),
                                    self.idle_s)  # fmt: skip
                except Exception:
                    log.exception("the artifact builder failed; retrying in %.0f s", self.idle_s)
                self._wake.wait(self.idle_s)
                self._wake.clear()
        finally:
            self._release()
