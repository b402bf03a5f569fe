"""Shared fixtures: small real models built without torch, so agent-side tests run the real runtime."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from models import make_conv_model


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
    from servers import postgres_server

    with postgres_server() as url:
        yield url
