"""The agent's HTTP client for a collector's ``/v1`` agent endpoints, and retry with back-off for its calls.

Every failure becomes a ``CollectorUnavailable`` (retryable: the network or the collector is down, or it failed)
or a ``CollectorRejected`` (a 4xx: the same request will fail again). ``retry`` waits between attempts with
capped exponential back-off and full jitter, so agents that lost a collector together do not return together,
capped at a few seconds while the collector is down so they are back soon after it is.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Annotated, Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

import latbench
from latbench.errors import ArtifactError, CollectorError, CollectorRejected, CollectorUnavailable
from latbench.protocol import (
    API_PREFIX,
    MAX_JOBS_PER_LEASE,
    EnrollRequest,
    EnrollResponse,
    ErrorBody,
    HeartbeatRequest,
    HeartbeatResponse,
    JobSpec,
    LeaseRelease,
    LeaseReleaseResponse,
    LeaseRequest,
    ResultBatch,
    ResultBatchResponse,
    ResultItem,
    Seconds,
)
from latbench.tls import untrusted, verification
from latbench.urls import collector_url

log = logging.getLogger(__name__)

T = TypeVar("T")
Answer = TypeVar("Answer", bound=BaseModel)

TIMEOUT = httpx.Timeout(30.0, connect=5.0)
"""Per request: a refused or black-holed collector is noticed in seconds, a large result batch still has time."""
RETRYABLE_4XX = frozenset({408, 425, 429})
"""4xx statuses that mean "not now" rather than "never"; treated like a 5xx."""
DOWNLOAD_CHUNK = 1 << 20
ANSWER_DEADLINE_S = 120.0
"""The most a whole answer may take to arrive: the per-read timeout alone lets a collector that trickles a byte
every few seconds hold the agent for ever."""
MAX_ANSWER_BYTES = 64 << 20
"""The largest answer read (a full lease grant is well under 1 MiB): a larger one is a collector's fault."""
MAX_MESSAGE_CHARS = 500
"""The most of a collector's error text an agent repeats."""
MAX_REASON_CHARS = 300
"""The most of an unreadable job's validation message its error result repeats (field names are the collector's)."""


class AgentClient:
    """One collector as an agent sees it. An ``httpx.Client`` underneath: give each thread its own instance.

    ``token`` (the agent token) is read at every request, so it can be replaced after a re-enrollment.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout: httpx.Timeout | float = TIMEOUT,
        ca_cert: str | Path | None = None,
    ) -> None:
        self.url = collector_url(url)
        self.token = token
        self.ca_cert = ca_cert
        """For HTTPS: the CA certificate that verifies the collector (``latbench.tls``; the system's by default)."""
        verify = verification(self.url, ca_cert)
        self._http = httpx.Client(base_url=self.url + API_PREFIX, timeout=timeout, verify=verify)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AgentClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def enroll(self, request: EnrollRequest, enrollment_token: str) -> EnrollResponse:
        return self._post("/enroll", request, EnrollResponse, token=enrollment_token)

    def heartbeat(self, lease_ids: Sequence[str]) -> HeartbeatResponse:
        return self._post("/heartbeat", HeartbeatRequest(lease_ids=list(lease_ids)), HeartbeatResponse)

    def lease(self, max_jobs: int, runtimes: Sequence[str] | None = None) -> Grant:
        """Jobs to measure, read one at a time (``Grant``), for ``runtimes`` only if given (the collector's record
        of what the agent offers may be older than this start)."""
        request = LeaseRequest(max_jobs=max_jobs, runtimes=None if runtimes is None else list(runtimes))
        status, content = self._exchange("/leases", request)
        try:
            return _grant(content)
        except ValidationError as exc:
            raise self._unexpected("/leases", status, exc) from None

    def release(self, lease_ids: Sequence[str], reason: str, timeout: float | None = None) -> LeaseReleaseResponse:
        body = LeaseRelease(lease_ids=list(lease_ids), reason=reason)
        return self._post("/leases/release", body, LeaseReleaseResponse, timeout=timeout)

    def push(self, results: Sequence[ResultItem], timeout: float | None = None) -> ResultBatchResponse:
        return self._post("/results", ResultBatch(results=list(results)), ResultBatchResponse, timeout=timeout)

    def download(self, sha256: str, out: IO[bytes], max_bytes: int) -> None:
        """Stream artifact ``sha256`` into ``out``. The bytes are unverified: checking the hash is the caller's;
        but a download over ``max_bytes`` (by its declared length, or as it streams) stops with an
        ``ArtifactError`` before anything past the limit is written."""
        with self._reaching(), self._http.stream("GET", f"/artifacts/{sha256}", headers=self._auth()) as response:
            if not response.is_success:
                raise _refusal(response, self.url, _read(response, time.monotonic() + ANSWER_DEADLINE_S))
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise ArtifactError(f"artifact {sha256} is {declared} bytes, over the {max_bytes} bytes expected")
            received = 0
            for chunk in response.iter_bytes(DOWNLOAD_CHUNK):
                received += len(chunk)
                if received > max_bytes:
                    raise ArtifactError(f"artifact {sha256} ran over the {max_bytes} bytes expected")
                out.write(chunk)

    def _auth(self, token: str | None = None) -> dict[str, str]:
        token = token or self.token
        return {"Authorization": f"Bearer {token}"} if token else {}

    @contextlib.contextmanager
    def _reaching(self) -> Iterator[None]:
        try:
            yield
        except httpx.TransportError as exc:
            if (refused := untrusted(exc, self.url)) is not None:
                raise refused from None
            raise CollectorUnavailable(
                f"cannot reach the collector at {self.url}: {type(exc).__name__}: {exc}"
            ) from None

    def _post(
        self,
        path: str,
        body: BaseModel,
        answer: type[Answer],
        token: str | None = None,
        timeout: float | None = None,
    ) -> Answer:
        status, content = self._exchange(path, body, token, timeout)
        try:
            return answer.model_validate_json(content)
        except ValidationError as exc:
            raise self._unexpected(path, status, exc) from None

    def _exchange(
        self, path: str, body: BaseModel, token: str | None = None, timeout: float | None = None
    ) -> tuple[int, bytes]:
        """POST ``body`` to ``path``; a success's status and bytes, or the error a refusal stands for."""
        headers = {**self._auth(token), "Content-Type": "application/json"}
        deadline = time.monotonic() + (ANSWER_DEADLINE_S if timeout is None else timeout)
        with (
            self._reaching(),
            self._http.stream(
                "POST",
                path,
                content=body.model_dump_json(),
                headers=headers,
                timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
            ) as response,
        ):
            content = _read(response, deadline)
        if not response.is_success:
            raise _refusal(response, self.url, content)
        return response.status_code, content

    def _unexpected(self, path: str, status: int, exc: ValidationError) -> CollectorUnavailable:
        return CollectorUnavailable(
            f"the collector at {self.url} answered {path} with an unexpected body ({exc.error_count()} error(s); "
            f"{first_error(exc)})",
            status,
        )


def _read(response: httpx.Response, deadline: float) -> bytes:
    """The whole body of a streamed ``response``, refused past ``MAX_ANSWER_BYTES`` or the ``deadline`` (a
    ``time.monotonic()`` set when the request began)."""
    content = bytearray()
    for chunk in response.iter_bytes(DOWNLOAD_CHUNK):
        content += chunk
        if len(content) > MAX_ANSWER_BYTES:
            raise CollectorUnavailable(f"the collector's answer ran over {MAX_ANSWER_BYTES} bytes; not read further")
        if time.monotonic() > deadline:
            raise CollectorUnavailable("the collector's answer was still arriving at its deadline; not read further")
    return bytes(content)


@dataclass(frozen=True)
class UnreadableJob:
    """A granted job this agent cannot read, named well enough to be answered."""

    job_id: str
    lease_id: str
    reason: str
    """What is wrong with it, as one printable line."""

    def message(self) -> str:
        """The error result's text: what was wrong, and the likely cause (an agent older than its collector)."""
        return (
            f"this agent (latbench {latbench.__version__}) cannot read the job the collector sent ({self.reason}); "
            "if the collector is newer than the agent, upgrade the agent (latbench deploy upgrades in place)"
        )


@dataclass(frozen=True)
class Grant:
    """A lease grant as the agent acts on it: the jobs to measure, each job id once, and those it cannot read.

    A grant is read a job at a time. A collector newer than its agents may send a job with a field they do not
    know or a value past their bounds; read whole, the grant would fail for every job in it, at every lease, and
    the agent would measure nothing while the jobs waited out their leases. Read a job at a time, each readable
    job is measured, and each unreadable one that still names its job and lease is answered with an error result
    saying why: the collector counts a failed attempt (another agent may read it) instead of the job circling."""

    jobs: list[JobSpec]
    unreadable: list[UnreadableJob]
    retry_after_s: float


class _Envelope(BaseModel):
    """A grant (``LeaseGrant``, as the collector sends it) with its jobs not yet read."""

    model_config = ConfigDict(extra="forbid")
    jobs: list[Any] = Field(max_length=MAX_JOBS_PER_LEASE)
    retry_after_s: Seconds


class _Names(BaseModel):
    """What an error result needs of a job."""

    job_id: Annotated[str, Field(min_length=1, max_length=128)]
    lease_id: Annotated[str, Field(min_length=1, max_length=128)]


def _grant(content: bytes) -> Grant:
    """The grant in ``content``; ``ValidationError`` when the grant itself, not one of its jobs, is unreadable. A
    job that does not even name its job and lease cannot be answered: it is logged and left to its lease."""
    envelope = _Envelope.model_validate_json(content)
    jobs: list[JobSpec] = []
    unreadable: list[UnreadableJob] = []
    for raw in envelope.jobs:
        try:
            jobs.append(JobSpec.model_validate(raw))
        except ValidationError as exc:
            reason = printable(first_error(exc), MAX_REASON_CHARS)
            try:
                names = _Names.model_validate(raw)
            except ValidationError:
                log.warning("a granted job names no readable job and lease (%s); left to its lease", reason)
                continue
            log.warning("job %s  refused: cannot read it (%s)", printable(names.job_id), reason)
            unreadable.append(UnreadableJob(names.job_id, names.lease_id, reason))
    return Grant(_once(jobs), unreadable, envelope.retry_after_s)


def _once(jobs: list[JobSpec]) -> list[JobSpec]:
    """``jobs`` with each job id once: a job granted twice would be measured twice, its second result refused."""
    seen: set[str] = set()
    kept = []
    for job in jobs:
        if job.job_id in seen:
            log.warning("job %s  granted twice in one lease; measured once", printable(job.job_id))
            continue
        seen.add(job.job_id)
        kept.append(job)
    return kept


def first_error(exc: ValidationError) -> str:
    """The first of ``exc``'s errors as ``field.path: message``."""
    first = exc.errors()[0]
    return f"{'.'.join(map(str, first['loc'])) or 'body'}: {first['msg']}"


def printable(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` from a collector as one log line: control characters escaped (no forged lines, no terminal
    escapes), at most ``limit`` characters."""
    escaped = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return escaped if len(escaped) <= limit else escaped[:limit] + "..."


def _refusal(response: httpx.Response, url: str, content: bytes) -> CollectorError:
    """The error a non-success response stands for; ``code`` is None when the body is not a latbench ``ErrorBody``
    (a proxy, or not a collector at all). A redirect is refused: agents never follow one (their token would go
    along), so it is named with where it points."""
    status = response.status_code
    if response.is_redirect:
        where = printable(response.headers.get("location", "nowhere"))
        return CollectorRejected(f"the collector at {url} answered {status}, a redirect to {where}: agents do not "
                                 "follow redirects; give the URL the collector is served at")  # fmt: skip
    try:
        body = ErrorBody.model_validate_json(content)
        code, message, detail = body.code, printable(body.message), body.detail
    except ValidationError:
        text = content.decode("utf-8", "replace").strip()
        code, message, detail = None, printable(text) or response.reason_phrase, None
    text = f"the collector at {url} answered {status}{f' {code}' if code else ''}: {message}"
    if status >= 500 or status in RETRYABLE_4XX:
        return CollectorUnavailable(text, status, code, detail, _retry_after(response))
    return CollectorRejected(text, status, code, detail)


def _retry_after(response: httpx.Response) -> float | None:
    """The seconds of a ``Retry-After`` header (its date form is not used by collectors)."""
    try:
        seconds = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return seconds if 0 <= seconds < float("inf") else None


@dataclass(frozen=True)
class Backoff:
    """Capped exponential back-off with full jitter: retry ``n`` (from 0) waits uniformly in
    ``[0, min(cap_s, first_s * 2**n)]``. Full jitter spreads a fleet's retries over the whole window.

    While the collector is down (a refused or lost connection, a 503) the window stops growing at
    ``outage_cap_s``, so agents are back within seconds of it, and a ``Retry-After`` it sent is waited at least
    (up to that cap). Other failures (a 500: a bug, which retrying soon will not fix) back off up to ``cap_s``."""

    first_s: float = 0.5
    cap_s: float = 30.0
    outage_cap_s: float = 3.0

    def ceiling(self, attempt: int) -> float:
        return min(self.cap_s, self.first_s * 2.0 ** min(attempt, 64))

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0.0, self.ceiling(attempt))

    def after(self, attempt: int, exc: CollectorUnavailable, rng: random.Random) -> float:
        """The wait before retry ``attempt`` after ``exc``."""
        if exc.status not in (None, 503):
            return self.delay(attempt, rng)
        floor = min(exc.retry_after_s or 0.0, self.outage_cap_s)
        return max(floor, rng.uniform(0.0, min(self.ceiling(attempt), self.outage_cap_s)))


def retry(
    call: Callable[[], T],
    *,
    backoff: Backoff = Backoff(),
    attempts: int | None = None,
    sleep: Callable[[float], object] = time.sleep,
    rng: random.Random | None = None,
    on_retry: Callable[[CollectorUnavailable, float], None] | None = None,
) -> T:
    """``call()``, retried while it raises ``CollectorUnavailable``; other errors pass through at once.

    Gives up and re-raises the last error after ``attempts`` calls (``None``: never), or as soon as ``sleep``
    returns true: ``threading.Event().wait`` as ``sleep`` makes the retries end when the event is set.
    """
    rng = rng or random.Random()
    failures = 0
    while True:
        try:
            return call()
        except CollectorUnavailable as exc:
            failures += 1
            if attempts is not None and failures >= attempts:
                raise
            delay = backoff.after(failures - 1, exc, rng)
            if on_retry is not None:
                on_retry(exc, delay)
            if sleep(delay):
                raise
