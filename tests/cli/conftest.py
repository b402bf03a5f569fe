"""A served collector for the CLI's management commands (``Harness.run_cli`` runs them against it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.served import Clock, Harness, Served


@pytest.fixture
def served(tmp_path: Path, artifact_cache: Path) -> Iterator[Harness]:
    with Served(f"sqlite:///{tmp_path / 'c.sqlite'}", artifact_cache, Clock()) as harness:
        yield harness
