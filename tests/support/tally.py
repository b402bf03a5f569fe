"""Counting a campaign's results after a fault: stored, stored twice, lost, and measured more than once."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import sqlalchemy as sa

_MEASURED = re.compile(r"INFO\s+(\S+)  [\d.]+ ms  cv ")
_ERRORS = sa.text(
    "SELECT COUNT(*) FROM results r JOIN jobs j ON j.id = r.job_id WHERE j.campaign_id = :campaign"
    " AND r.error IS NOT NULL"
)
_PER_ARCH = sa.text(
    "SELECT ca.arch, COUNT(r.id) FROM campaign_archs ca "
    "LEFT JOIN jobs j ON j.campaign_id = ca.campaign_id AND j.position = ca.position "
    "LEFT JOIN results r ON r.job_id = j.id AND r.error IS NULL "
    "WHERE ca.campaign_id = :campaign GROUP BY ca.arch"
)


def tally(db_url: str, campaign: str, agent_logs: list[Path]) -> dict[str, int]:
    """``total`` architectures of a one-device campaign; ``stored`` with a measurement in the store,
    ``duplicated`` measurements stored beyond one per architecture, ``lost`` architectures without one, and
    ``remeasured``: measurements the agents made (their logs) beyond one per architecture; ``errors``: error
    results (a job that failed on the way)."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            stored: dict[str, int] = {arch: n for arch, n in conn.execute(_PER_ARCH, {"campaign": campaign})}
            errors = conn.scalar(_ERRORS, {"campaign": campaign}) or 0
    finally:
        engine.dispose()
    measured = Counter(m.group(1) for log in agent_logs for m in _MEASURED.finditer(log.read_text()))
    return {
        "total": len(stored),
        "stored": sum(n >= 1 for n in stored.values()),
        "duplicated": sum(n - 1 for n in stored.values() if n > 1),
        "lost": sum(n == 0 for n in stored.values()),
        "remeasured": sum(n - 1 for arch, n in measured.items() if n > 1 and arch in stored),
        "errors": errors,
    }
