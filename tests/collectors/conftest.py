"""Every collector test runs against both stores (``db_url``: a SQLite file and a database on the real PostgreSQL
server), served in-process with a clock the test moves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.served import Clock, Harness, Served


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def collector(db_url: str, artifact_cache: Path, clock: Clock) -> Iterator[Harness]:
    with Served(db_url, artifact_cache, clock) as harness:
        yield harness
