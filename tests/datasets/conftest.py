"""Fixtures for dataset tests: an empty registry per test, and the CLI run as a user runs it."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``LATBENCH_HOME`` for this test (the registry is ``home / 'datasets'``), also for CLI subprocesses."""
    path = tmp_path / "home"
    monkeypatch.setenv("LATBENCH_HOME", str(path))
    return path
