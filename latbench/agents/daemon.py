"""The agent daemon: enroll once, then lease jobs, measure them, spool the results and push them, until stopped.

Workers are dumb and robust: the collector owns every decision, the agent owns its spool. A result is committed
to the spool before it is pushed and deleted only once the collector acks it, so neither a collector outage nor
an agent restart loses one, and a result pushed twice is recognised by its id. Pushes happen between jobs, never
while a timed measurement runs; the heartbeat thread (one small request per interval) is the only traffic then.
Results are pushed in batches: all of a lease's results together before the next lease, and sooner only once
the oldest of them has waited ``push_interval_s``, so an agent with fast jobs sends one request per batch
rather than one per job (the collector's cost is mostly per request), while slow jobs still show up promptly.

State dir (``$LATBENCH_HOME/agent``): ``agent.json`` (identity and token, mode 0600), ``spool.sqlite``,
``artifacts/``, and while it holds leases ``leases.json`` (``held``).

Faults that are the agent's and not the job's never count against a job: a full or read-only state dir
(``LocalStorageError``) hands its jobs back and stops the agent, naming the directory; a remote device that
cannot be reached (``DeviceUnreachable``) hands them back and the agent tries again later, backing off.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import random
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING

from pydantic import ValidationError

from latbench.agents.client import AgentClient, Backoff, retry
from latbench.agents.downloads import DownloadCache
from latbench.agents.environment import MachineInfo, machine_info
from latbench.agents.heartbeat import SHUTDOWN_TIMEOUT_S, Heartbeat, Leases
from latbench.agents.held import HELD_FILE, KILLED_WHILE_MEASURING, HeldJobs
from latbench.agents.identity import CREDENTIALS_FILE, Credentials, default_name, default_state_dir, make_state_dir
from latbench.agents.measure import ReferenceProbe, TimingSettings, load_cold, time_model
from latbench.agents.quiet import QuietPolicy
from latbench.agents.reports import error_item, refusal_item, result_item
from latbench.agents.runtimes import Runtime, get_runtime
from latbench.agents.spool import SPOOL_FILE, Spool
from latbench.errors import (
    ArtifactError,
    CollectorError,
    CollectorRejected,
    CollectorUnavailable,
    DeviceUnreachable,
    LatbenchError,
    LocalStorageError,
)
from latbench.precision import loadable_formats
from latbench.protocol import (
    MAX_BODY_BYTES,
    EnrollRequest,
    JobSpec,
    MachineInfoModel,
    ResultItem,
    RuntimeOffer,
)

if TYPE_CHECKING:
    from latbench.agents.remote.runner import RemoteRunner

PUSH_BATCH = 100
PUSH_INTERVAL_S = 5.0
"""Longest a spooled result waits for the rest of its lease's batch before it is pushed on its own."""
PUSH_BYTES = MAX_BODY_BYTES // 4
"""JSON per push: a batch of long measurements (many per-run times) stays well under the collector's limit."""

OUTAGE_LOG_EVERY_S = 60.0
"""While the collector cannot be reached: the first failure is a warning, then one line this often, not one a try."""

log = logging.getLogger("latbench.agent")


def _rejects_results(exc: CollectorRejected) -> bool:
    """Whether a 4xx on a push is about the results (dead-letter them) rather than about the agent: a bad token,
    or an answer that is no collector's (no ``ErrorBody``: a wrong URL or a proxy) stop the agent instead."""
    return exc.status != 401 and (exc.code is not None or exc.status in (413, 422))


REFERENCE_MAX_BYTES = 64 << 20
"""The most a reference model may be (a small NB201 cell, well under 1 MiB): the collector declares no size for it,
and without a bound an endless answer would fill the disk."""


def _declared_size(job: JobSpec, sha256: str) -> int:
    """The size the collector declared for artifact ``sha256`` of ``job``; for the reference model, its bound."""
    return job.artifact_bytes if sha256 == job.artifact_sha256 else REFERENCE_MAX_BYTES


@dataclasses.dataclass(frozen=True)
class Settled:
    """Spooled results a push settled: ``delivered`` (the collector acked them) and ``rejected`` (dead letters)."""

    delivered: int = 0
    rejected: int = 0

    def __add__(self, other: Settled) -> Settled:
        return Settled(self.delivered + other.delivered, self.rejected + other.rejected)


class _Shutdown(BaseException):
    """Raised in the main thread by the signal handler to abandon the download, measurement or request in
    progress."""


class AgentDaemon:
    """One agent: its identity, spool and artifact cache live in ``state_dir``; it works in ``run``.

    ``enrollment_token`` is needed only to enroll: on the first start, or when the collector no longer accepts
    the saved agent token. ``name`` and ``device_name`` matter only then, too. Opening takes the state dir's
    lock (one agent per state dir); ``close`` releases it. With ``remote``, jobs are measured on that device
    (which is the one enrolled) instead of this machine; the agent closes it.
    """

    def __init__(
        self,
        collector_url: str,
        runtimes: Sequence[RuntimeOffer],
        *,
        state_dir: Path | None = None,
        enrollment_token: str | None = None,
        name: str | None = None,
        device_name: str | None = None,
        max_jobs: int = 1,
        max_idle_s: float | None = None,
        poll_s: float | None = None,
        backoff: Backoff = Backoff(),
        remote: RemoteRunner | None = None,
        push_interval_s: float = PUSH_INTERVAL_S,
        quiet: QuietPolicy | None = None,
        ca_cert: Path | None = None,
    ) -> None:
        if max_jobs < 1:
            raise LatbenchError(f"max_jobs must be at least 1, got {max_jobs}")
        if not push_interval_s >= 0:
            raise LatbenchError(f"push_interval_s must be at least 0, got {push_interval_s}")
        self.state_dir = make_state_dir(state_dir or default_state_dir())
        self.runtimes = list(runtimes)
        self.enrollment_token = enrollment_token
        self.name = name
        self._enrolled_name = ""
        self._presented = ""
        """The fingerprint this agent presents when it enrolls again: the one it enrolled with, where a reading
        since made it another of the same hardware (``MachineInfo.psutil_free_fingerprint``); else this machine's."""
        self.device_name = device_name
        self.max_jobs = max_jobs
        self.max_idle_s = max_idle_s
        self.poll_s = poll_s
        self.backoff = backoff
        self.remote = remote
        self.push_interval_s = push_interval_s
        self.quiet = quiet
        self.client = AgentClient(collector_url, ca_cert=ca_cert)
        self.spool = Spool(self.state_dir / SPOOL_FILE)
        self.downloads = DownloadCache(self.state_dir / "artifacts", self.client)
        self._stop = threading.Event()
        self._interruptible = False
        self._leases = Leases()
        self._probes: dict[tuple[str, int, str, str], ReferenceProbe] = {}
        self._rng = random.Random()
        self._failures = 0
        self._idle_since = time.monotonic()
        self._heartbeat: Heartbeat | None = None
        self._unpushed_since: float | None = None
        self._held = HeldJobs(self.state_dir / HELD_FILE)
        self._outage_since: float | None = None
        self._outage_said = 0.0
        self._idle_exit = False

    @property
    def credentials_path(self) -> Path:
        return self.state_dir / CREDENTIALS_FILE

    def close(self) -> None:
        try:
            for probe in self._probes.values():
                probe.runtime.close()
            self._probes.clear()
            if self.remote is not None:
                self.remote.close()
            self.client.close()
        finally:
            self.spool.close()

    def __enter__(self) -> AgentDaemon:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def stop(self) -> None:
        """Stop taking work (any thread); ``run`` returns after the current job, releasing what is left."""
        self._stop.set()

    def run(self) -> None:
        """Work until stopped or idle for ``max_idle_s``; then release unstarted leases and flush the spool."""
        try:
            credentials = self._credentials()
            log.info(
                "agent %s (%s) of device %s serving %s",
                credentials.name or self.name or "(unnamed)", credentials.agent_id, credentials.device_name,
                self.client.url,
            )  # fmt: skip
            self._heartbeat = Heartbeat(
                AgentClient(self.client.url, credentials.agent_token, ca_cert=self.client.ca_cert),
                self._leases,
                credentials.heartbeat_interval_s,
            )
            self._heartbeat.start()
            self._recover()
            self._loop()
        except _Shutdown:
            log.info("abandoned the job or request in progress")
        except CollectorUnavailable:  # only from enrolling, whose retries end when the agent is stopped
            if not self._stop.is_set():
                raise
        finally:
            if self._heartbeat is not None:
                self._heartbeat.stop()
                self._finish()
        pending = self.spool.counts().pending if self._idle_exit else 0
        if pending:  # a script that waits for --max-idle must not take this for "all sent"
            raise LatbenchError(
                f"{pending} result(s) could not be delivered to {self.client.url}: they stay in {self.spool.path} "
                "and are pushed on the next start"
            )

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM/SIGINT handler (main thread): stop taking work and abandon a download, measurement or request."""
        log.info("%s: stopping", signal.Signals(signum).name)
        self.stop()
        if self._interruptible:
            self._interruptible = False
            raise _Shutdown

    # --- identity -------------------------------------------------------------------------------------------

    def _credentials(self) -> Credentials:
        saved = Credentials.load(self.credentials_path)
        if saved is None:
            saved = self._enroll()
        elif saved.collector_url != self.client.url:
            raise LatbenchError(
                f"{self.state_dir} holds the agent enrolled with {saved.collector_url}; "
                f"give another --state-dir to serve {self.client.url}"
            )
        else:
            if self.name and saved.name and self.name != saved.name:
                log.warning(
                    "--name %s is ignored: %s holds agent %s, enrolled under that name; another --state-dir enrolls "
                    "a new agent", self.name, self.state_dir, saved.name,
                )  # fmt: skip
            saved = self._same_hardware(saved)
        self._enrolled_name = saved.name  # enrolling again below keeps it: a restart without --name is no new agent
        if saved.offered != self._offered():
            saved = self._offer(saved)
            self._enrolled_name = saved.name
        self._use(saved)
        return saved

    def _offered(self) -> str:
        """A digest of the runtimes this start offers, as ``Credentials.offered`` keeps it."""
        offers = json.dumps([offer.model_dump(mode="json") for offer in self.runtimes], sort_keys=True)
        return hashlib.sha256(offers.encode()).hexdigest()[:16]

    def _offer(self, saved: Credentials) -> Credentials:
        """Tell the collector the runtimes this start offers: it leases by what the agent enrolled with, so a
        restart with a runtime added would wait for jobs it never gets, and one with a runtime taken away would
        be leased its jobs. Enrolling again under its own token keeps the agent, its device and its leases."""
        names = ", ".join(offer.name for offer in self.runtimes)
        if not saved.name:  # a file from before names were kept: the name to enroll again under is unknown
            log.warning("the collector may not know the runtimes this agent offers now (%s); enroll it again with "
                        "an admin token to tell it", names)  # fmt: skip
            return saved
        try:
            credentials = self._enroll(saved.agent_token, saved.device_name)
        except CollectorRejected:  # its token revoked: the work loop says what to do, or enrolls it again
            return saved
        log.info("told the collector the runtimes this agent offers now: %s", names)
        return credentials

    def _machine(self) -> MachineInfo:
        """The machine jobs are measured on: the remote device, or this one."""
        return self.remote.machine_info() if self.remote is not None else machine_info()

    def _same_hardware(self, saved: Credentials) -> Credentials:
        """Refuse a state dir enrolled on other hardware (copied to another machine, a cloned image, a remote
        state dir pointed at another device): its results would be filed under the device it enrolled as. A file
        from before fingerprints were kept takes this machine's."""
        info = self._machine()
        here = info.fingerprint()
        if not saved.fingerprint:
            saved = dataclasses.replace(saved, fingerprint=here)
            saved.save(self.credentials_path)
        elif saved.fingerprint == info.psutil_free_fingerprint() != here:
            log.info("the device's fingerprint, read without psutil before, is now %s; the collector knows this "
                     "device by %s, which the agent keeps presenting", here, saved.fingerprint)  # fmt: skip
            self._presented = saved.fingerprint
        elif saved.fingerprint != here:
            what = "the remote device" if self.remote is not None else "this machine"
            raise LatbenchError(
                f"{self.state_dir} holds agent {saved.name or saved.agent_id} of device {saved.device_name}, enrolled "
                f"on other hardware (fingerprint {saved.fingerprint}); {what} is {info.cpu_model} {info.machine}, "
                f"{info.cores_logical} threads (fingerprint {here}): its results would be filed under "
                f"{saved.device_name}. Give another --state-dir to enroll it as a device of its own"
            )
        return saved

    def _enroll(self, token: str | None = None, device_name: str | None = None) -> Credentials:
        """Enroll with ``token`` (default: the enrollment token given), as ``device_name`` (default: the one
        given, else the agent's name)."""
        token = token or self.enrollment_token
        if not token:
            raise LatbenchError(
                "this agent is not enrolled with the collector: give the enrollment token that "
                "`latbench token create` printed (--token or LATBENCH_TOKEN)"
            )
        info = self._machine()
        name = self.name or self._enrolled_name or default_name()  # enrolling again keeps the agent's name
        try:
            request = EnrollRequest(
                name=name,
                device_name=self.device_name or device_name,
                fingerprint=self._presented or info.fingerprint(),
                machine=MachineInfoModel.model_validate(info.as_dict()),
                runtimes=self.runtimes,
            )
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise LatbenchError(f"cannot enroll: {problems}") from None
        answer = retry(
            lambda: self.client.enroll(request, token),
            backoff=self.backoff,
            sleep=self._stop.wait,
            rng=self._rng,
            on_retry=lambda exc, delay: log.warning("%s; enrolling again in %.1f s", exc, delay),
        )
        credentials = Credentials(
            collector_url=self.client.url,
            agent_id=answer.agent_id,
            agent_token=answer.agent_token,
            device_id=answer.device_id,
            device_name=answer.device_name,
            heartbeat_interval_s=answer.heartbeat_interval_s,
            lease_ttl_s=answer.lease_ttl_s,
            name=name,
            fingerprint=request.fingerprint,
            offered=self._offered(),
        )
        credentials.save(self.credentials_path)
        self._enrolled_name = name
        log.info("enrolled as agent %s (%s) of device %s", name, answer.agent_id, answer.device_name)
        return credentials

    def _use(self, credentials: Credentials) -> None:
        self.client.token = credentials.agent_token
        if self._heartbeat is not None:
            self._heartbeat.client.token = credentials.agent_token

    def _reenroll(self, exc: CollectorRejected) -> None:
        if not self.enrollment_token:
            raise LatbenchError(
                f"{exc}: the collector no longer accepts this agent's token; to enroll it again, start it with an "
                "admin token (--token or LATBENCH_TOKEN), or with an enrollment token under another --name "
                "(enrollment tokens enroll new names only)"
            ) from None
        log.warning("%s; enrolling again", exc)
        self._use(self._enroll())

    # --- the work loop --------------------------------------------------------------------------------------

    def _recover(self) -> None:
        """Settle what a killed run held (``held``): an error result for the job it was measuring, its other
        leases released."""
        previous = HeldJobs.recover(self._held.path)
        if not previous.held:
            return
        if previous.measuring is not None:
            job_id = previous.held[previous.measuring]
            self.spool.add(refusal_item(job_id, previous.measuring, KILLED_WHILE_MEASURING))
            log.warning("job %s was being measured when the agent stopped last: reported as failed once", job_id)
        others = [lease for lease in previous.held if lease != previous.measuring]
        if others:
            try:
                with self._abandonable():
                    self.client.release(others, "agent restarted", timeout=SHUTDOWN_TIMEOUT_S)
                log.info("released %d lease(s) held when the agent stopped last", len(others))
            except CollectorError as exc:
                log.warning("could not release %d lease(s) held before, they will expire: %s", len(others), exc)
        previous.drop(list(previous.held))

    def _loop(self) -> None:
        self._idle_since = time.monotonic()
        reenrolled = False
        while not self._stop.is_set():
            idle = time.monotonic() - self._idle_since
            if self.max_idle_s is not None and idle >= self.max_idle_s:
                log.info("no work for %.0f s; exiting", idle)
                self._idle_exit = True
                return
            try:
                with self._abandonable():
                    pushed = self._flush()
                    grant = self.client.lease(self.max_jobs, [offer.name for offer in self.runtimes])
            except CollectorUnavailable as exc:
                self._failed(exc)
                continue
            except CollectorRejected as exc:
                if exc.status != 401:
                    raise
                if reenrolled:  # the token just issued was refused too: not a stale one, so back off first
                    self._failed(exc)
                self._reenroll(exc)
                reenrolled = True
                continue
            reenrolled = False
            self._failures = 0
            if self._outage_since is not None:
                log.info("the collector answers again after %.0f s%s", time.monotonic() - self._outage_since,
                         self._settled_line(pushed))  # fmt: skip
                self._outage_since = None
            for unreadable in grant.unreadable:
                self.spool.add(refusal_item(unreadable.job_id, unreadable.lease_id, unreadable.message()))
            if grant.jobs:
                self._work(grant.jobs)
                self._idle_since = time.monotonic()
            else:
                self._pause(self.poll_s if self.poll_s is not None else grant.retry_after_s)

    @contextlib.contextmanager
    def _abandonable(self) -> Iterator[None]:
        """A stop abandons what runs inside (downloads, requests): a collector that hangs cannot hold a stopping
        agent. Nothing is lost: results stay spooled until acknowledged (a re-push is stored once), a grant whose
        answer is abandoned leaves its jobs to their leases, and a partial download is never kept."""
        self._interruptible = True
        try:
            yield
        finally:
            self._interruptible = False

    def _failed(self, exc: CollectorError) -> None:
        """Back off after a failed request; say so once, then once every ``OUTAGE_LOG_EVERY_S`` while it lasts."""
        if isinstance(exc, CollectorUnavailable):
            delay = self.backoff.after(self._failures, exc, self._rng)
        else:
            delay = self.backoff.delay(self._failures, self._rng)
        self._failures += 1
        now = time.monotonic()
        if self._outage_since is None:
            self._outage_since = self._outage_said = now
            log.warning("%s; trying again in %.1f s", exc, delay)
        elif now - self._outage_said >= OUTAGE_LOG_EVERY_S:
            self._outage_said = now
            log.warning("%s; still trying (for %.0f s, %d tries so far)", exc, now - self._outage_since, self._failures)
        else:
            log.debug("%s; trying again in %.1f s", exc, delay)
        self._pause(delay)

    def _pause(self, seconds: float) -> None:
        """Wait ``seconds``, less if ``max_idle_s`` runs out first; a stop ends the wait."""
        if self.max_idle_s is not None:
            seconds = min(seconds, self.max_idle_s - (time.monotonic() - self._idle_since))
        self._stop.wait(max(seconds, 0.0))

    def _work(self, jobs: Sequence[JobSpec]) -> None:
        self._leases.add(job.lease_id for job in jobs)
        self._held.add((job.lease_id, job.job_id) for job in jobs)
        self._prefetch(jobs)
        for position, job in enumerate(jobs):
            if self._stop.is_set():
                return
            if self._leases.is_lost(job.lease_id):
                log.info("%s  skipped: its lease was lost before it started", job.arch)
                self._settled(job.lease_id)
                continue
            self._held.start(job.lease_id)
            try:
                item = self._run(job)
            except DeviceUnreachable as exc:
                self._device_lost(exc, jobs[position:])
                return
            self._held.stop()
            if item is None:
                self._settled(job.lease_id)
                continue
            self.spool.add(item)  # before the lease is let go: a spool that cannot take it hands the job back
            self._settled(job.lease_id)
            _report(job, item)
            if self._unpushed_since is None:
                self._unpushed_since = time.monotonic()
            if time.monotonic() - self._unpushed_since < self.push_interval_s:
                continue  # the rest of the batch, or the next lease request, takes it along
            try:
                with self._abandonable():
                    self._flush()
            except CollectorError as exc:
                log.warning("%s; %d result(s) spooled until it can be pushed", exc, self.spool.counts().pending)

    def _settled(self, lease_id: str) -> None:
        self._leases.discard(lease_id)
        self._held.drop([lease_id])

    def _device_lost(self, exc: DeviceUnreachable, jobs: Sequence[JobSpec]) -> None:
        """Hand back ``jobs`` (the one that met the fault and those not started) without counting a failure, then
        lease nothing until the device answers again (``_await_device``)."""
        leases = [job.lease_id for job in jobs if not self._leases.is_lost(job.lease_id)]
        try:
            with self._abandonable():
                self.client.release(leases, "remote device unreachable", timeout=SHUTDOWN_TIMEOUT_S)
            handed = f"{len(leases)} job(s) went back to the queue"
        except CollectorError as error:
            handed = f"{len(leases)} lease(s) will expire ({error})"
        for job in jobs:
            self._settled(job.lease_id)
        log.warning("%s; %s", exc, handed)
        self._await_device()

    def _await_device(self) -> None:
        """Wait, backing off, until the remote device answers (each try reconnects); say so once a minute while it
        stays away, and once when it is back. A stop ends the wait."""
        assert self.remote is not None
        since = said = time.monotonic()
        tries = 0
        while not self._stop.is_set():
            self._stop.wait(self.backoff.delay(tries, self._rng))
            tries += 1
            try:
                with self._abandonable():
                    self.remote.ensure_reachable()
            except DeviceUnreachable as exc:
                if time.monotonic() - said >= OUTAGE_LOG_EVERY_S:
                    said = time.monotonic()
                    log.warning("%s; still trying (for %.0f s)", exc, said - since)
                continue
            log.info("the remote device answers again after %.0f s", time.monotonic() - since)
            return

    def _prefetch(self, jobs: Sequence[JobSpec]) -> None:
        """Download the artifacts of every leased job before measuring the first: downloads then never run
        between measurements, and the jobs can be measured through a collector outage. A failure is left for the
        job itself to meet again and report."""
        with self._abandonable():
            for job in jobs:
                for sha256 in (job.artifact_sha256, job.reference_sha256):
                    if sha256 is not None and not self._stop.is_set():
                        try:
                            if self._format(job.runtime, job.artifact_format) == job.artifact_format:
                                self.downloads.fetch(sha256, job.artifact_format, _declared_size(job, sha256))
                        except LocalStorageError:
                            raise  # the agent's own disk: no job of this batch can be measured
                        except LatbenchError:
                            pass

    def _run(self, job: JobSpec) -> ResultItem | None:
        """Measure ``job``. A failure becomes an error result; a lost lease or an unreachable collector, no result
        (the lease expires and the job goes back to the queue)."""
        runtime: Runtime | None = None
        self._interruptible = True
        try:
            if self.remote is not None:
                return self._run_remote(job, self.remote)
            runtime_cls = get_runtime(job.runtime)
            artifact = self._fetch(job, job.artifact_sha256, self._format(job.runtime, job.artifact_format))
            probe = self._probe(job, runtime_cls) if job.reference_sha256 else None
            settings = TimingSettings(**job.settings.model_dump())
            runtime = runtime_cls(threads=job.threads, provider=job.provider)
            cold = load_cold(runtime, artifact, job.input_shapes)
            if self._leases.is_lost(job.lease_id):
                log.info("%s  skipped: its lease was lost before measuring", job.arch)
                return None
            measurement = time_model(runtime, settings, probe, self.quiet, cold)
            self._interruptible = False
            return result_item(job, measurement, runtime)
        except (LocalStorageError, DeviceUnreachable):
            raise  # the agent's fault or its device's, not the job's: never an error result
        except CollectorUnavailable as exc:
            if not self._stop.is_set():
                log.warning("%s  not measured: %s", job.arch, exc)
            return None
        except LatbenchError as exc:
            return error_item(job, str(exc), exc.final)
        except ValueError as exc:
            return error_item(job, str(exc))
        except Exception as exc:  # a runtime's own errors, or a bug: report it and keep serving
            log.exception("%s  failed unexpectedly", job.arch)
            return error_item(job, f"{type(exc).__name__}: {exc}")
        finally:
            self._interruptible = False
            if runtime is not None:
                runtime.close()

    def _format(self, runtime: str, wanted: str) -> str:
        """The artifact format ``runtime`` loads here: ``wanted`` (a job's) where it is one of its precisions'."""
        if self.remote is not None:
            return self.remote.artifact_format(runtime)
        runtime_cls = get_runtime(runtime)
        return wanted if wanted in loadable_formats(runtime_cls) else runtime_cls.artifact_format

    def _run_remote(self, job: JobSpec, remote: RemoteRunner) -> ResultItem | None:
        """Measure ``job`` on the remote device. No reference probe there: each job runs in a fresh process on the
        device, so drift shows in the machine-state flags only."""
        artifact = self._fetch(job, job.artifact_sha256, remote.artifact_format(job.runtime))
        if self._leases.is_lost(job.lease_id):
            log.info("%s  skipped: its lease was lost before measuring", job.arch)
            return None
        settings = TimingSettings(**job.settings.model_dump())
        measurement, engine = remote.measure(
            artifact, job.runtime, job.threads, job.provider, settings, job.input_shapes
        )
        self._interruptible = False
        # the engine's version and settings, as a runtime's
        return result_item(job, measurement, engine, engine.numpy_version)  # type: ignore[arg-type]

    def _fetch(self, job: JobSpec, sha256: str, fmt: str) -> Path:
        """Download with back-off while the collector is away, until the agent stops or the lease is lost; refuse
        a job whose artifact was built in another format than the runtime here loads."""
        if fmt != job.artifact_format:
            raise ArtifactError(
                f"the collector built a {job.artifact_format} artifact, but runtime {job.runtime!r} here loads {fmt}"
            )
        return retry(
            lambda: self.downloads.fetch(sha256, fmt, _declared_size(job, sha256)),
            backoff=self.backoff,
            sleep=lambda seconds: self._stop.wait(seconds) or self._leases.is_lost(job.lease_id),
            rng=self._rng,
            on_retry=lambda exc, delay: log.warning("%s; downloading again in %.1f s", exc, delay),
        )

    def _probe(self, job: JobSpec, runtime_cls: type[Runtime]) -> ReferenceProbe:
        """The reference probe of this engine configuration, calibrated once and kept for later jobs."""
        assert job.reference_sha256 is not None
        key = (job.runtime, job.threads, job.provider, job.reference_sha256)
        if key not in self._probes:
            path = self._fetch(job, job.reference_sha256, self._format(job.runtime, job.artifact_format))
            engine = runtime_cls(threads=job.threads, provider=job.provider)
            engine.load(path)
            self._probes[key] = ReferenceProbe(engine)
        return self._probes[key]

    # --- pushing --------------------------------------------------------------------------------------------

    def _flush(self, timeout: float | None = None) -> Settled:
        """Push every pending result, oldest first, in batches; return how many were settled. Raises
        ``CollectorError`` if a push fails."""
        settled = Settled()
        while batch := self.spool.pending(PUSH_BATCH, PUSH_BYTES):
            done = self._push(batch, timeout)
            if not done.delivered + done.rejected:
                log.warning("the collector acknowledged none of %d result(s); leaving them spooled", len(batch))
                return settled
            settled += done
        self._unpushed_since = None
        return settled

    def _settled_line(self, settled: Settled) -> str:
        """What a flush after an outage did, for the line that says the collector is back: a dead letter is no
        delivery (a collector restored from a backup rejects the results of jobs it no longer has)."""
        if not settled.delivered + settled.rejected:
            return ""
        rejected = f", {settled.rejected} rejected and kept as dead letters in {self.spool.path}"
        return f"; {settled.delivered} spooled result(s) delivered{rejected if settled.rejected else ''}"

    def _push(self, batch: list[ResultItem], timeout: float | None) -> Settled:
        """Push ``batch``; return how many of its results are settled: acked (delivered) or dead-lettered.

        A batch rejected as a whole is split in halves until the offending results stand alone; those become
        dead letters, the others are pushed again.
        """
        try:
            answer = self.client.push(batch, timeout=timeout)
        except CollectorRejected as exc:
            if not _rejects_results(exc):
                raise
            if any(item.final for item in batch) and ".final" in str(exc):  # a collector from before the flag
                return self._push([item.model_copy(update={"final": False}) for item in batch], timeout)
            if len(batch) > 1:
                half = len(batch) // 2
                return self._push(batch[:half], timeout) + self._push(batch[half:], timeout)
            self.spool.dead_letter([batch[0].result_id], str(exc))
            log.error(
                "result of job %s rejected and kept as a dead letter in %s: %s", batch[0].job_id, self.spool.path, exc
            )
            return Settled(rejected=1)
        jobs = {item.result_id: item.job_id for item in batch}
        acked = [ack for ack in answer.acks if ack.result_id in jobs]
        self.spool.ack(ack.result_id for ack in acked)
        for ack in acked:
            if ack.status not in ("stored", "duplicate"):
                log.info("result of job %s %s by the collector: %s", jobs[ack.result_id], ack.status, ack.message)
        return Settled(delivered=len(acked))

    def _finish(self) -> None:
        """Release the leases not worked on and flush the spool once, each with a short timeout."""
        unfinished = self._leases.active()
        released: list[str] = []
        if unfinished:
            try:
                self.client.release(unfinished, "agent stopping", timeout=SHUTDOWN_TIMEOUT_S)
                log.info("released %d lease(s)", len(unfinished))
                released = unfinished
            except CollectorError as exc:
                log.warning("could not release %d lease(s), they will expire: %s", len(unfinished), exc)
        with contextlib.suppress(LocalStorageError):  # what stays in the file is released on the next start
            self._held.stop()  # a job abandoned by a stop was handed back, not killed by it
            self._held.drop([*released, *(lease for lease in self._held.held if self._leases.is_lost(lease))])
        try:
            self._flush(timeout=SHUTDOWN_TIMEOUT_S)
            counts = self.spool.counts()
        except CollectorError as exc:
            log.warning("could not push the spool: %s", exc)
            counts = self.spool.counts()
        except LocalStorageError as exc:  # the error that stopped the agent, most likely: said once, by the CLI
            log.debug("the spool cannot be read while stopping: %s", exc)
            return
        if counts.pending:
            log.warning("%d result(s) stay in %s and are pushed on the next start", counts.pending, self.spool.path)
        if counts.dead:
            log.warning(
                "%d result(s) rejected by the collector are kept as dead letters in %s", counts.dead, self.spool.path
            )


def _report(job: JobSpec, item: ResultItem) -> None:
    if item.stats is None:
        log.warning("%s  failed: %s", job.arch, item.error)
        return
    state = "stable" if item.stable else f"unstable ({','.join(item.flags)})"
    log.info("%s  %.3f ms  cv %.3f  %s", job.arch, item.stats.median_ms, item.stats.cv, state)


@contextlib.contextmanager
def _signals_stop(agent: AgentDaemon) -> Iterator[None]:
    previous = {s: signal.signal(s, agent.on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def run_agent(agent: AgentDaemon) -> None:
    """Run ``agent`` in the foreground (main thread) until SIGTERM/SIGINT or ``max_idle_s``, then close it."""
    with agent, _signals_stop(agent):
        agent.run()
