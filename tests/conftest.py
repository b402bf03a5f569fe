"""Shared fixtures: small real models built without torch, so agent-side tests run the real runtime; one artifact
cache; the real PostgreSQL server, and the store URL every collector test runs against (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.models import make_conv_model
from tests.support.served import Clock, Harness, Served


@pytest.fixture
def conv_model(tmp_path: Path) -> Path:
    path = tmp_path / "conv.onnx"
    make_conv_model(path)
    return path


@pytest.fixture(scope="session")
def artifact_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One artifact cache for the whole test session, so each network is exported once."""
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """One real PostgreSQL server for the session (tests make their own databases with ``create_database``)."""
    from tests.support.postgres import postgres_server

    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new empty collector store: a SQLite file, then a database on the session's PostgreSQL server (slow: it
    starts the server)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'collector.sqlite'}"
    from tests.support.postgres import create_database

    return create_database(request.getfixturevalue("postgres_url"), f"test_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def served(tmp_path: Path, artifact_cache: Path) -> Iterator[Harness]:
    """A served collector on SQLite (``tests.support.served``); ``Harness.run_cli`` runs management commands at it."""
    with Served(f"sqlite:///{tmp_path / 'c.sqlite'}", artifact_cache, Clock()) as harness:
        yield harness
