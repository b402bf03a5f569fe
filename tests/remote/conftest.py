"""A real sshd for the remote-runner and deploy tests: "the remote host" is this machine over loopback SSH."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.sshd import Sshd, sshd_server


@pytest.fixture(scope="session")
def sshd() -> Iterator[Sshd]:
    with sshd_server() as server:
        yield server
