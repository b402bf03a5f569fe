"""``latbench collector prune``: delete the artifact files no campaign needs any more, from the store
(``artifact_blobs``) and from an artifacts directory, while collectors serve the store.

A file is needed while a campaign that measures it can still lease a job: every campaign but those done, failed
for good (an artifact build failed, or every job did) or cancelled (with no lease still running). The reference
model is always kept, and uploaded model files too unless ``uploads`` (they cannot be built again). Only files
are deleted: artifact rows stay, so results go on naming what they were measured on (by SHA-256; no result holds
artifact bytes); a pruned row has no ``file_name`` (``blobs.PRUNED``).

The decision is made again, per batch, inside the transaction that deletes (one ``UPDATE`` whose ``NOT EXISTS``
finds any campaign outside the finished ones measuring the same file), so a campaign created meanwhile keeps its
files. One that slips in between (PostgreSQL, a campaign committed while the statement runs) still gets them:
a built artifact asked for again is built again, byte for byte (``artifact_store``), and an agent asking for it
meanwhile is answered 503 and retries; an uploaded one is refused with a 404 that says to upload it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session, aliased

from latbench.collectors import artifact_store, blobs, campaigns
from latbench.collectors.db import Store, unopened
from latbench.collectors.migrations import head, known_revisions, revision, unknown
from latbench.collectors.models import ArtifactRow, CampaignArchRow, CampaignRow
from latbench.errors import LatbenchError
from latbench.spaces import MODEL_SET

BATCH_BYTES = 64 * 10**6
"""Bytes of files pruned per transaction (at least one file): deleting 75 MB from SQLite took 0.9 s, during which
a running collector's writes wait; they go on between transactions."""
STATUS_TTL_S = 60.0
"""The lease time campaign status is asked with: it only says which devices are online, which pruning ignores."""


@dataclass(frozen=True)
class Pruned:
    """What a prune freed (or, ``dry_run``, would free): files in the store and in the artifacts directories, and
    the uploaded files of finished campaigns it kept (without ``uploads``)."""

    dry_run: bool
    campaigns: int
    """Campaigns done, failed or cancelled, whose files were considered."""
    artifacts: int
    store_bytes: int
    cache_files: int
    cache_bytes: int
    kept_uploads: int
    kept_upload_bytes: int
    artifacts_dirs: list[str]

    def summary(self) -> str:
        """One line for the operator."""
        verb = "would free" if self.dry_run else "freed"
        line = f"{verb} {self.artifacts} artifact file(s), {_mb(self.store_bytes)} in the store"
        if self.artifacts_dirs:
            where = ", ".join(self.artifacts_dirs)
            line += f" and {self.cache_files} file(s), {_mb(self.cache_bytes)} in {where}"
        line += f", of {self.campaigns} finished or cancelled campaign(s)"
        if self.kept_uploads:
            line += (f"; kept {self.kept_uploads} uploaded model file(s) of theirs, {_mb(self.kept_upload_bytes)}, "
                     "which cannot be built again (--uploads prunes them too)")  # fmt: skip
        if not self.artifacts_dirs:
            line += "; each collector removes pruned files from its artifacts directory within 10 minutes"
        return line

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def open_store(db_url: str) -> Store:
    """The collector store at ``db_url``, refused unless it exists and is at this release's schema."""
    try:
        url = sa.make_url(db_url)
    except sa.exc.ArgumentError:
        raise LatbenchError(f"not a database URL: {db_url!r}") from None
    if url.get_backend_name() == "sqlite" and not (url.database and Path(url.database).is_file()):
        raise LatbenchError(f"no collector store at {url.database}")
    store = Store(db_url)
    try:
        with store.engine.connect() as connection:
            found = revision(connection)
    except sa.exc.OperationalError as exc:
        store.close()
        raise unopened(db_url, exc) from exc
    if found != head():
        store.close()
        if found is not None and found not in known_revisions():
            raise unknown(found)
        ours = f"this latbench serves revision {head()}"
        raise LatbenchError(f"the store is at schema revision {found or 'none'} and {ours}: start a collector of "
                            "this release on it first (it migrates the store)")  # fmt: skip
    return store


def finished(session: Session, now: datetime) -> list[str]:
    """The campaigns none of whose jobs will be leased again: cancelled ones (once no lease of theirs runs), done
    ones, and failed ones but those waiting for their reference model (built again at the next start)."""
    ids = []
    for campaign in session.scalars(select(CampaignRow).order_by(CampaignRow.created_at, CampaignRow.id)):
        state = campaigns.status(session, campaign, now, STATUS_TTL_S)
        if state.state == "cancelled":
            over = not any(device.leased for device in state.devices)
        elif state.state == "failed":
            over = artifact_store.reference_sha256(session, campaign.format) is not None
        else:
            over = state.state == "done"
        if over:
            ids.append(campaign.id)
    return ids


def _prunable(finished: Sequence[str], uploads: bool) -> sa.ColumnElement[bool]:
    """An artifact whose file may go: kept, measured by one of ``finished`` campaigns, and no artifact of the same
    content is the reference, an upload (unless ``uploads``), measured by another campaign, or by none at all."""
    same = aliased(ArtifactRow)
    measured = select(CampaignArchRow.campaign_id).where(CampaignArchRow.artifact_digest == same.key_digest)
    needed = [
        same.key_digest.in_(artifact_store.REFERENCE_DIGESTS),
        measured.where(CampaignArchRow.campaign_id.not_in(finished)).exists(),
        ~measured.exists(),
    ]
    if not uploads:
        needed.append(same.space == MODEL_SET)
    by_finished = exists().where(
        CampaignArchRow.artifact_digest == ArtifactRow.key_digest, CampaignArchRow.campaign_id.in_(finished)
    )
    return sa.and_(
        ArtifactRow.sha256.is_not(None),
        ArtifactRow.file_name.is_not(None),
        by_finished,
        ~exists().where(same.sha256 == ArtifactRow.sha256, sa.or_(*needed)),
    )


def _candidates(session: Session, finished: Sequence[str]) -> dict[str, tuple[int, bool, set[str]]]:
    """SHA-256 -> (size, whether it is an uploaded file, key digests) of every file finished campaigns alone
    measure, uploads included."""
    found: dict[str, tuple[int, bool, set[str]]] = {}
    rows = session.execute(
        select(ArtifactRow.sha256, ArtifactRow.size, ArtifactRow.space, ArtifactRow.key_digest).where(
            _prunable(finished, uploads=True)
        )
    )
    for sha256, size, space, digest in rows:
        known = found.get(str(sha256), (0, False, set()))
        found[str(sha256)] = (max(known[0], size or 0), known[1] or space == MODEL_SET, {*known[2], digest})
    return found


def prune(
    store: Store, now: datetime, artifacts_dirs: Sequence[Path] = (), uploads: bool = False, dry_run: bool = False
) -> Pruned:
    """Delete the files of artifacts no campaign needs any more from the store and from ``artifacts_dirs`` (with
    those pruned before that were left there), ``BATCH_BYTES`` at a time; ``dry_run`` changes nothing and says what
    would go. Uploaded files only with ``uploads``."""
    with store.read() as session:
        over = finished(session, now)
        candidates = _candidates(session, over) if over else {}
        earlier = blobs.pruned(session)
    chosen = {sha: found for sha, found in candidates.items() if uploads or not found[1]}
    kept = [found[0] for found in candidates.values() if not uploads and found[1]]
    if dry_run:
        freed = set(chosen)
        digests = earlier.union(*(found[2] for found in chosen.values()))
        files = [(path, _size(path)) for root in artifacts_dirs for path in blobs.files_of(root, digests)]
    else:
        freed = _delete(store, over, _batches({sha: found[0] for sha, found in chosen.items()}), uploads)
        with store.read() as session:
            files = [removed for root in artifacts_dirs for removed in blobs.forget(session, root)]
    return Pruned(
        dry_run=dry_run,
        campaigns=len(over),
        artifacts=len(freed),
        store_bytes=sum(chosen[sha][0] for sha in freed),
        cache_files=len(files),
        cache_bytes=sum(size for _, size in files),
        kept_uploads=len(kept),
        kept_upload_bytes=sum(kept),
        artifacts_dirs=[str(root) for root in artifacts_dirs],
    )


def _batches(sizes: dict[str, int]) -> list[list[str]]:
    """The SHA-256s of ``sizes`` in groups of about ``BATCH_BYTES``."""
    batches: list[list[str]] = [[]]
    total = 0
    for sha256, size in sizes.items():
        if batches[-1] and total + size > BATCH_BYTES:
            batches.append([])
            total = 0
        batches[-1].append(sha256)
        total += size
    return [batch for batch in batches if batch]


def _delete(store: Store, finished: Sequence[str], batches: list[list[str]], uploads: bool) -> set[str]:
    """Prune the files of ``batches`` that are still prunable when their transaction runs; return those pruned."""
    pruned: set[str] = set()
    for batch in batches:
        with store.write() as session:
            statement = (
                update(ArtifactRow)
                .where(ArtifactRow.sha256.in_(batch), _prunable(finished, uploads))
                .values(file_name=None)
                .returning(ArtifactRow.sha256)
            )
            done = {str(sha256) for sha256 in session.scalars(statement)}
            blobs.delete_files(session, done)
        pruned |= done
    return pruned


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
