"""Bad input gets a 4xx with a clear message in the error shape, never a 500, and never changes the store."""

from __future__ import annotations

import json
import logging
import socket
import time
from urllib.parse import urlparse

import httpx
import pytest

from latbench.protocol import MAX_BODY_BYTES
from tests.support.served import Harness, measurement


@pytest.fixture
def leased(collector: Harness):
    """An agent holding a lease, and the store's content at that point."""
    collector.campaign()
    agent = collector.agent("a1")
    [job] = agent.post("/leases", json={}).json()["jobs"]
    return agent, job, collector.dump()


def refused(response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "message", "detail"} and body["code"] == code
    return body["message"]


@pytest.mark.slow
def test_malformed_json_is_a_400(collector: Harness, leased):
    agent, _, before = leased
    message = refused(agent.post("/results", content=b'{"results": [', headers={"content-type": "application/json"}),
                      400, "malformed_json")  # fmt: skip
    assert "not valid JSON" in message
    assert collector.dump() == before


WRONG = [
    ({"result_id": "not-a-uuid"}, "results.0.result_id"),
    ({"stats": "fast"}, "results.0.stats"),
    ({"times_ms": [1.0, "x", 1.0]}, "results.0.times_ms.1"),
    ({"times_ms": [1.0, -1.0, 1.0]}, "results.0.times_ms.1"),
    ({"warmup_runs": 2**40}, "results.0.warmup_runs"),
    ({"colour": "blue"}, "results.0.colour"),
    ({"measured_at": "yesterday"}, "results.0.measured_at"),
]


def test_wrong_types_and_unknown_fields_are_422_naming_the_field(collector: Harness, leased):
    agent, job, before = leased
    for change, where in WRONG:
        message = refused(agent.post("/results", json={"results": [measurement(job, **change)]}), 422, "invalid")
        assert message.startswith(f"{where}: "), message
    assert collector.dump() == before


def test_non_positive_and_non_finite_latencies_are_422(collector: Harness, leased):
    agent, job, before = leased
    for value in ["-1.0", "0", "NaN", "Infinity", "-Infinity", "1e999"]:
        text = json.dumps({"results": [measurement(job)]}).replace('"median_ms": 1.0', f'"median_ms": {value}')
        response = agent.post("/results", content=text.encode(), headers={"content-type": "application/json"})
        message = refused(response, 422, "invalid")
        assert message.startswith("results.0.stats.median_ms: "), value
        if value[-1].isalpha():  # said for what it is, not as a bound ("greater than 0")
            assert message.endswith("must be a finite number, not NaN or an infinity"), message
    assert collector.dump() == before


@pytest.mark.parametrize(
    ("value", "said"),
    [("true", "a boolean is not a number"), ('"1.0"', "a string is not a number: send the number itself")],
)
def test_booleans_and_strings_are_not_numbers(collector: Harness, leased, value: str, said: str):
    """pydantic's lax mode would read them as 1.0."""
    agent, job, before = leased
    for old, where in [('"median_ms": 1.0', "stats.median_ms"), ('"times_ms": [0.9, 1.0, 1.2]', "times_ms.1"),
                       ('"ref_ratio": 1.01', "ref_ratio"), ('"wall_s": 1.5', "wall_s")]:  # fmt: skip
        text = json.dumps({"results": [measurement(job)]})
        assert old in text
        new = old.replace("1.0", value) if "times_ms" in old else old.rsplit(" ", 1)[0] + " " + value
        response = agent.post("/results", content=text.replace(old, new), headers={"content-type": "application/json"})
        message = refused(response, 422, "invalid")
        assert message == f"results.0.{where}: Value error, {said}", message
    assert collector.dump() == before


def test_statistics_that_times_ms_do_not_give_are_422(collector: Harness, leased):
    agent, job, before = leased
    result = measurement(job)
    for name, value, says in [("median_ms", 1.1, "stats.median_ms is 1.1 but times_ms give 1.0"),
                              ("mean_ms", 1.0, "stats.mean_ms is 1.0 but times_ms give 1.0333"),
                              ("min_ms", 0.5, "stats.min_ms is 0.5 but times_ms give 0.9"),
                              ("max_ms", 1.2000001, "stats.max_ms is 1.2000001 but times_ms give 1.2"),
                              ("p99_ms", 1.3, "stats.p99_ms is 1.3, outside times_ms (0.9 to 1.2)")]:  # fmt: skip
        wrong = {**result, "stats": {**result["stats"], name: value}}
        message = refused(agent.post("/results", json={"results": [wrong]}), 422, "invalid")
        assert message.startswith(f"result {result['result_id']}: {says}"), message
    assert collector.dump() == before
    assert agent.post("/results", json={"results": [result]}).json()["acks"][0]["status"] == "stored"


BAD_CAMPAIGNS = [
    {"space": "nb999", "samples": 2},
    {"space": "nb201"},
    {"space": "nb201", "samples": 20000},
    {"space": "nb201", "archs": []},
    {"space": "nb201", "samples": 2, "resolution": 7},
    {"space": "nb201", "samples": 2, "settings": {"min_time_s": 5, "max_time_s": 1}},
]


@pytest.mark.slow
def test_unknown_architectures_and_impossible_campaigns_are_422(collector: Harness):
    before = collector.dump()
    archs = ["|nor_conv_3x3~0|+|bogus~0|none~1|+|none~0|none~1|none~2|", "not an arch"]
    response = collector.admin.post("/admin/campaigns", json={"space": "nb201", "archs": archs})
    message = refused(response, 422, "invalid")
    assert message.startswith("2 of 2 architectures are not in nb201: ")
    assert response.json()["detail"] == archs
    response = collector.admin.post("/admin/campaigns", json={"space": "fbnet", "archs": ["k3_e1"]})
    assert "1 of 1 architectures are not in fbnet" in refused(response, 422, "invalid")
    for spec in BAD_CAMPAIGNS:
        refused(collector.admin.post("/admin/campaigns", json=spec), 422, "invalid")
    assert collector.dump() == before


def raw_post(url: str, path: str, head: dict[str, str], body: bytes) -> tuple[int, dict]:
    """POST over a bare socket, so a body can be cut short or over-declared, and read the whole answer."""
    target = urlparse(url)
    with socket.create_connection((target.hostname, target.port), timeout=60) as s:
        lines = [f"POST {target.path}{path} HTTP/1.1", f"Host: {target.netloc}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in head.items()]
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    header, _, payload = answer.partition(b"\r\n\r\n")
    return int(header.split()[1]), json.loads(payload)


@pytest.mark.slow
def test_bodies_over_the_limit_are_413_by_declared_or_streamed_size(collector: Harness, leased):
    _, _, before = leased
    token = collector.enroll_token()
    head = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    status, body = raw_post(collector.url, "/v1/enroll", {**head, "Content-Length": str(MAX_BODY_BYTES + 1)}, b"")
    assert status == 413 and body["code"] == "too_large"
    size = MAX_BODY_BYTES + 1
    chunked = f"{size:x}\r\n".encode() + b" " * size
    status, body = raw_post(collector.url, "/v1/enroll", {**head, "Transfer-Encoding": "chunked"}, chunked)
    assert status == 413 and body["code"] == "too_large"
    assert collector.dump() == before


def test_text_the_store_cannot_hold_is_refused_or_stored_never_a_500(collector: Harness, leased):
    agent, job, before = leased
    response = agent.post("/results", json={"results": [measurement(job, runtime_version="1.2\x00")]})
    if response.status_code == 422:
        assert collector.dump() == before
    else:
        assert response.status_code == 200 and response.json()["acks"][0]["status"] == "stored"


def test_unknown_routes_and_methods_answer_in_the_error_shape(collector: Harness):
    refused(collector.admin.get("/nowhere"), 404, "not_found")
    refused(collector.admin.delete("/admin/campaigns"), 405, "method_not_allowed")
    refused(collector.admin.get("/admin/campaigns/nope"), 404, "not_found")
    refused(collector.admin.get("/admin/campaigns/nope/results"), 404, "not_found")


TOKEN_TIMES = ["2030-01-01T00:00:00", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "2000-01-01T00:00:00Z"]


@pytest.mark.parametrize("route", ["/admin/enrollment-tokens", "/admin/admin-tokens"])
def test_token_expiry_without_a_zone_out_of_range_or_past_is_422(collector: Harness, route: str):
    before = collector.dump()
    messages = [refused(collector.admin.post(route, json={"expires_at": t}), 422, "invalid") for t in TOKEN_TIMES]
    assert messages[0].startswith("expires_at: ") and "timezone" in messages[0]
    assert "out of range" in messages[1] and "out of range" in messages[2]
    assert "not in the future" in messages[3]
    assert collector.dump() == before
    assert collector.admin.post(route, json={"expires_at": "2999-01-01T09:00:00+09:00"}).status_code == 201


def test_an_enrollment_limit_the_store_cannot_hold_is_422(collector: Harness):
    before = collector.dump()
    for uses in (2**63, 2**31):
        response = collector.admin.post("/admin/enrollment-tokens", json={"max_uses": uses})
        assert refused(response, 422, "invalid").startswith("max_uses: ")
    assert collector.dump() == before


def test_a_wrong_method_says_which_are_allowed(collector: Harness):
    response = collector.admin.delete("/admin/campaigns")
    refused(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET, HEAD, POST"


def _cut_short(url: str, method: str, path: str, head: dict[str, str], sent: bytes) -> None:
    """Declare more body than is sent, then hang up: a client killed while sending."""
    target = urlparse(url)
    with socket.create_connection((target.hostname, target.port), timeout=60) as s:
        lines = [f"{method} {target.path}{path} HTTP/1.1", f"Host: {target.netloc}"]
        lines += [f"{k}: {v}" for k, v in {**head, "Content-Length": str(len(sent) + 100)}.items()]
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + sent)


@pytest.mark.slow  # waits for the server to notice each hang-up
def test_a_client_gone_mid_body_is_one_log_line_and_stores_nothing(collector: Harness, leased, caplog):
    agent, job, before = leased
    caplog.set_level(logging.INFO)
    cut = [("POST", "/v1/results", agent.headers, json.dumps({"results": [measurement(job)]}).encode()[:-5]),
           ("POST", "/v1/heartbeat", agent.headers, b'{"lease_ids": ['),
           ("PUT", "/v1/admin/models/" + "0" * 64, collector.admin.headers, b"\x08\x07onnx-bytes")]  # fmt: skip
    for number, (method, path, headers, sent) in enumerate(cut, start=1):
        _cut_short(collector.url, method, path, {"Authorization": headers["authorization"]}, sent)
        deadline = time.monotonic() + 30
        while sum("disconnected before its body ended" in r.getMessage() for r in caplog.records) < number:
            assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
            time.sleep(0.05)
    assert not [r for r in caplog.records if r.exc_info or "Exception in ASGI" in r.getMessage()]
    assert collector.dump() == before
    assert agent.post("/heartbeat", json={"lease_ids": [job["lease_id"]]}).status_code == 200


def test_a_huge_unknown_field_name_is_not_echoed_back_whole(collector: Harness, leased):
    agent, job, before = leased
    key = "k" * 200_000
    cases = [(agent, "/results", {"results": [{**measurement(job), key: 1}]}),
             (collector.admin, "/admin/campaigns", {"space": "nb201", key: 1})]  # fmt: skip
    for client, path, body in cases:
        response = client.post(path, json=body)
        assert refused(response, 422, "invalid").count("k") < 200 and len(response.content) < 5_000
    assert collector.dump() == before


def test_paths_are_exact_and_no_redirect_repeats_the_host_header(collector: Harness):
    response = collector.admin.get("/health/", headers={"Host": "evil.example"}, follow_redirects=False)
    refused(response, 404, "not_found")
    assert "location" not in response.headers


def test_a_write_to_a_path_no_route_serves_is_a_404_or_405_not_a_token_error(collector: Harness):
    agent = collector.agent("a1")
    stranger = httpx.Client(base_url=collector.url + "/v1", timeout=30)
    for client in (collector.admin, agent, stranger):
        refused(client.post("/nowhere", json={}), 404, "not_found")
        response = client.post("/health", json={})
        refused(response, 405, "method_not_allowed")
        assert response.headers["allow"] == "GET, HEAD"
    refused(stranger.post("/results", json={"results": []}), 401, "unauthenticated")  # the agent API still checks
    refused(collector.admin.post("/results", json={"results": []}), 403, "forbidden")
