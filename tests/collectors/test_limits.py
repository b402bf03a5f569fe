"""What strangers and slow clients can cost a collector, over real sockets against a served collector: a write
without a live token is refused before its body is read, headers have a size limit, and slow headers or bodies
are cut off."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from latbench.collectors.limits import MAX_HEADER_BYTES
from tests.support.served import ADMIN_TOKEN, Clock, Harness, Served

pytestmark = pytest.mark.slow  # a served collector, and clients that wait on purpose

HEADER_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 1.0
BIG = 30 * 2**20
WRITES = ["/v1/enroll", "/v1/heartbeat", "/v1/leases", "/v1/leases/release", "/v1/results",
          "/v1/admin/campaigns", "/v1/admin/enrollment-tokens", "/v1/admin/models/" + "0" * 64]  # fmt: skip


@pytest.fixture
def collector(tmp_path: Path, artifact_cache: Path) -> Iterator[Harness]:
    served = Served(f"sqlite:///{tmp_path / 'collector.sqlite'}", artifact_cache, Clock(),
                    server={"header_timeout_s": HEADER_TIMEOUT_S}, body_timeout_s=BODY_TIMEOUT_S)  # fmt: skip
    with served as harness:
        yield harness


def connect(collector: Harness) -> socket.socket:
    target = urlparse(collector.url)
    return socket.create_connection((target.hostname, target.port), timeout=5)


def head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: collector", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def answer(s: socket.socket) -> tuple[int | None, bytes]:
    """The status and bytes of the server's answer, read until its declared length or until the server closes
    or goes quiet for 5 s (``None``: it sent nothing)."""
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
            header, found, body = data.partition(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: *(\d+)", header)
            if found and length and len(body) >= int(length.group(1)):
                break
    except (TimeoutError, ConnectionResetError):
        pass
    return (int(data.split()[1]) if data else None), data


def test_a_write_without_a_live_token_is_refused_before_its_body_is_sent(collector: Harness):
    """Each write declares a 30 MiB body and sends none: the answer comes anyway."""
    agent_token = collector.enroll("a1").json()["agent_token"]
    for path in WRITES:
        method = "PUT" if "/models/" in path else "POST"
        wrong_kind = agent_token if path.startswith("/v1/admin/") else ADMIN_TOKEN
        cases = [(None, 401), ("lb_agent_0123456789abcdef_" + "x" * 43, 401), ("a", 401)]
        for token, status in cases + ([(wrong_kind, 403)] if path != "/v1/enroll" else []):
            with connect(collector) as s:
                auth = {"Authorization": f"Bearer {token}"} if token else {}
                s.sendall(head(method, path, {**auth, "Content-Length": str(BIG)}))
                got, data = answer(s)
            assert got == status, (path, token, data[:300])


def test_health_answers_at_once_while_a_stranger_streams_a_big_body(collector: Harness):
    body = b'{"pad": [' + b"1," * (BIG // 2 - 8) + b"1]}"
    refused: list[int | None] = []

    def stranger() -> None:
        with connect(collector) as s:
            s.sendall(head("POST", "/v1/enroll", {"Authorization": "Bearer lb_enroll_bogus", "Content-Length":
                                                  str(len(body)), "Content-Type": "application/json"}))  # fmt: skip
            with contextlib.suppress(OSError):  # refused and closed before all of it was sent
                s.sendall(body)
            refused.append(answer(s)[0])

    thread = threading.Thread(target=stranger)
    thread.start()
    slowest = 0.0
    with httpx.Client(base_url=collector.url) as client:
        while thread.is_alive():
            started = time.monotonic()
            assert client.get("/v1/health").status_code == 200
            slowest = max(slowest, time.monotonic() - started)
    thread.join()
    assert refused in ([401], [None]), refused
    assert slowest < 1.0, f"/v1/health took {slowest:.2f} s"


def test_headers_over_the_limit_are_431(collector: Harness):
    with connect(collector) as s:
        s.sendall(head("GET", "/v1/health", {"X-Pad": "x" * (MAX_HEADER_BYTES + 1)}))
        got, _ = answer(s)
    assert got == 431
    assert httpx.get(collector.url + "/v1/health", headers={"X-Pad": "x" * 8000}).status_code == 200


def test_headers_that_trickle_in_are_cut_off(collector: Harness):
    with connect(collector) as s:
        started = time.monotonic()
        s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: collector\r\nX-Slow: ")
        s.settimeout(0.2)
        cut = b""
        while time.monotonic() - started < HEADER_TIMEOUT_S + 4:
            try:
                s.sendall(b"x")
                cut = s.recv(65536)
                break  # an answer, or b"": the server closed the connection
            except TimeoutError:
                continue
            except OSError:
                break
        else:
            pytest.fail("the server kept waiting for the headers")
    assert cut == b"" or cut.startswith(b"HTTP/1.1 408"), cut
    assert time.monotonic() - started < HEADER_TIMEOUT_S + 3


def test_a_body_that_trickles_in_gets_a_408(collector: Harness):
    agent_token = collector.enroll("a1").json()["agent_token"]
    with connect(collector) as s:
        started = time.monotonic()
        s.sendall(head("POST", "/v1/heartbeat", {"Authorization": f"Bearer {agent_token}", "Content-Length": "1000",
                                                 "Content-Type": "application/json"}))  # fmt: skip
        s.sendall(b'{"lease_ids": [')
        got, data = answer(s)
    assert got == 408 and b"did not arrive within" in data, data
    assert time.monotonic() - started < BODY_TIMEOUT_S + 3
