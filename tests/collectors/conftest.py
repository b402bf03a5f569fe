"""Every collector test runs against both stores: a SQLite file and a database on the real PostgreSQL server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Clock, Harness, Served


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'collector.sqlite'}"
    from servers import create_database

    return create_database(request.getfixturevalue("postgres_url"), f"collector_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def collector(db_url: str, artifact_cache: Path, clock: Clock) -> Iterator[Harness]:
    with Served(db_url, artifact_cache, clock) as harness:
        yield harness
