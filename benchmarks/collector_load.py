"""How many results per second does the collector take in? Simulated agents lease and push over loopback.

For each store, a real ``latbench collector serve`` process (SQLite in a scratch directory, or a throwaway
PostgreSQL cluster from ``tests/servers.py``) gets one NB201 campaign of ``--archs`` architectures. ``--agents``
simulated agents (asyncio tasks sharing this process, each with its own HTTP connection) enroll as distinct
devices, so the campaign has archs x agents jobs, then loop as ``latbench agent run --max-jobs K`` does, minus
the measuring: lease ``--lease-batch`` (K) jobs, then push their results ``--push-batch`` at a time. The real
agent pushes after every job, so an online agent pushes one result at a time (the default here); it pushes up
to 100 at a time only when it drains a spool filled while the collector was away (``--push-batch 10`` and up
model that). Each result carries ``--runs`` per-run times. Printed per store: results ingested per second
(first lease to last ack), where the CPU went meanwhile (collector process, database server, agents, whole
machine) and what one result cost the service, push and lease latency, lost and duplicated results (the acks
against the export and the store itself), and the rate of raw inserts of the same rows into the same database
(a scratch table without keys or foreign keys, Core executemany, one transaction per batch of
``--lease-batch`` rows) with the ratio API / raw.

The agents run in this process on the same cores as the collector and the database, and take their share of
them (the ``cpu`` line shows it); on a machine shared with other work the rate also depends on that work, so
the ``cpu per result`` line gives what a result costs and the rate those costs allow on idle cores.

    python benchmarks/collector_load.py                               # SQLite and PostgreSQL, 40 archs x 50 agents
    python benchmarks/collector_load.py --stores postgresql --push-batch 10
    python benchmarks/collector_load.py --stores postgresql --archs 100 --lease-batch 20

Artifacts are exported once into the shared artifact cache (``$LATBENCH_CACHE_DIR``, else
``~/.cache/latbench/artifacts``), which each collector started here serves with ``--artifacts-dir``, so later
runs skip the exports. PostgreSQL needs the Debian ``postgresql`` server binaries (``.ci/run`` installs them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import httpx
import numpy as np
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tests.support starts services

import latbench
from latbench.agents.daemon import PUSH_BATCH, PUSH_INTERVAL_S
from latbench.agents.stats import LatencyStats
from latbench.artifacts import default_root
from latbench.client import CollectorClient
from latbench.collectors.db import create_engine
from latbench.collectors.models import JobRow, ResultRow
from latbench.collectors.service import settle_heap
from latbench.protocol import (
    API_PREFIX,
    CampaignCreate,
    EnrollRequest,
    EnrollResponse,
    HeartbeatRequest,
    JobSpec,
    LatencyStatsModel,
    LeaseGrant,
    LeaseRequest,
    MachineInfoModel,
    MachineStateModel,
    ResultBatch,
    ResultBatchResponse,
    ResultItem,
    RuntimeOffer,
)
from tests.support.ports import free_port
from tests.support.postgres import create_database, postgres_server
from tests.support.processes import ADMIN_TOKEN, Collector, children

RUNTIME = "onnxruntime"
SAMPLE_POOL = 64
"""Distinct synthetic measurements per run; each pushed result takes one with fresh ids."""
REQUEST_TIMEOUT_S = 60.0
RAW_TABLE = "collector_load_raw"


@dataclass
class Load:
    """What the simulated agents saw: one entry per push and per lease, and every ack."""

    push_ms: list[float] = field(default_factory=list)
    push_sizes: list[int] = field(default_factory=list)
    lease_ms: list[float] = field(default_factory=list)
    heartbeat_ms: list[float] = field(default_factory=list)
    acks: Counter[str] = field(default_factory=Counter)
    stored: set[str] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)
    first_lease: float | None = None
    last_ack: float | None = None
    push_spans: list[tuple[float, float]] = field(default_factory=list)
    """(sent, acked) of every push, for the steady-state figures."""
    lease_spans: list[tuple[float, float]] = field(default_factory=list)
    first_grants: list[float] = field(default_factory=list)
    """When each agent got its first jobs: once all have, every device has joined the campaign."""
    loop_lag_ms: list[float] = field(default_factory=list)
    """How late a 10 ms timer fired in the agents' event loop: time the agents' own process adds to latency."""
    done_at: list[float] = field(default_factory=list)
    """When each agent found no job left: from the first of these on, fewer agents offer load."""
    timed_out: bool = False
    client_cpu_s: float = 0.0
    collector_cpu_s: float | None = None
    database_cpu_s: float | None = None
    machine_busy_s: float | None = None


def process_cpu_s(pid: int) -> float | None:
    """User plus system CPU seconds of process ``pid`` so far, from Linux's ``/proc``; ``None`` elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def lag_probe(load: Load, every_s: float = 0.01) -> None:
    while True:
        t0 = time.perf_counter()
        await asyncio.sleep(every_s)
        load.loop_lag_ms.append((time.perf_counter() - t0 - every_s) * 1e3)


async def wait_or_timeout(event: asyncio.Event, timeout_s: float) -> bool:
    """Wait for ``event`` at most ``timeout_s``; say whether it is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout_s)
    return event.is_set()


def collector_cpu_s(pid: int) -> float | None:
    """CPU seconds of the collector process and its worker processes (its children) so far."""
    own = process_cpu_s(pid)
    return None if own is None else own + sum(process_cpu_s(child) or 0.0 for child in children(pid))


def machine_busy_s() -> float | None:
    """CPU seconds this machine has spent busy (all cores, idle and I/O wait excluded), from ``/proc/stat``."""
    try:
        ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return None
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def database_cpu(url: str) -> dict[int, float]:
    """CPU seconds so far of each process of the PostgreSQL server behind ``url`` (empty for SQLite, which runs
    inside the collector): the server is the process whose command line names the URL's port, plus its children."""
    port = sa.make_url(url).port
    if port is None:
        return {}
    stats: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stats[int(entry.name)] = (int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]),
                                          (entry / "cmdline").read_bytes().decode(errors="replace"))  # fmt: skip
    servers = {pid for pid, (_, cmd) in stats.items() if "postgres" in cmd and f"-p\0{port}\0" in cmd}
    pids = servers | {pid for pid, (parent, _) in stats.items() if parent in servers}
    return {pid: cpu for pid in pids if (cpu := process_cpu_s(pid)) is not None}


def database_spent(before: dict[int, float], after: dict[int, float]) -> float | None:
    """CPU the database's processes used in between (a process that ended in between is not counted)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items()) if after else None


def spent(before: float | None, after: float | None) -> float | None:
    return after - before if before is not None and after is not None else None


def measurements(count: int, runs: int, seed: int) -> list[tuple[LatencyStatsModel, list[float]]]:
    """Plausible measurements: lognormal run times around medians of 1-20 ms, with their exact statistics."""
    rng = np.random.default_rng(seed)
    pool = []
    for _ in range(count):
        times_ns = rng.uniform(1, 20) * 1e6 * rng.lognormal(0.0, 0.05, runs)
        stats = LatencyStatsModel(**LatencyStats.from_ns(times_ns).as_dict())
        pool.append((stats, (times_ns / 1e6).tolist()))
    return pool


def enroll_request(i: int) -> EnrollRequest:
    """Agent ``i`` on its own device: distinct fingerprint and device name."""
    machine = MachineInfoModel(
        cpu_model="simulated",
        machine=platform.machine(),
        cores_physical=1,
        cores_logical=1,
        memory_gb=1.0,
        os="simulated",
        python=platform.python_version(),
        hostname=f"load-host-{i:03d}",
    )
    return EnrollRequest(
        name=f"load-agent-{i:03d}",
        device_name=f"load-device-{i:03d}",
        fingerprint=f"{0x10AD_0000_0000 + i:016x}",
        machine=machine,
        runtimes=[RuntimeOffer(name=RUNTIME, version="1.0.0", providers=["cpu"])],
    )


def result_batch(jobs: list[JobSpec], pool: list[tuple[LatencyStatsModel, list[float]]], start: int) -> ResultBatch:
    """One pushed batch: a fresh result id per leased job, its measurement taken from ``pool``."""
    state = MachineStateModel(load_1m=0.5, cpu_freq_mhz=2400.0, governor="performance", memory_available_gb=4.0)
    common = {
        "warmup_runs": 10,
        "attempts": 1,
        "stable": True,
        "attempt_flags": [[]],
        "ref_ratio": 1.0,
        "runtime_version": "1.0.0",
        "optimization": "all",
        "latbench_version": latbench.__version__,
        "numpy_version": np.__version__,
        "state_before": state,
        "state_after": state,
    }
    items = []
    for n, job in enumerate(jobs):
        stats, times_ms = pool[(start + n) % len(pool)]
        measured = {"stats": stats, "times_ms": times_ms, "wall_s": sum(times_ms) / 1e3}
        ids = {"result_id": uuid.uuid4(), "job_id": job.job_id, "lease_id": job.lease_id}
        items.append(ResultItem(**ids, **measured, **common, measured_at=datetime.now(timezone.utc)))
    return ResultBatch(results=items)


@dataclass(frozen=True)
class Pace:
    """How a simulated agent spends its time and groups its pushes, as ``latbench agent run`` does."""

    lease_batch: int
    push_batch: int
    """Most results in one push (the real agent's ``PUSH_BATCH``)."""
    push_interval_s: float
    """A result waits at most this long for the rest of its lease's batch (the agent's ``--push-interval``)."""
    job_s: float
    """Mean simulated measuring time per job; 0 pushes as fast as the collector answers (its saturation)."""
    seed: int = 0


async def agent(
    connections: tuple[httpx.AsyncClient, httpx.AsyncClient],
    enrolled: EnrollResponse,
    pace: Pace,
    pool: list[tuple[LatencyStatsModel, list[float]]],
    start: asyncio.Event,
    deadline: float,
    load: Load,
) -> None:
    """Lease and push until this agent's device has no job left or the deadline passes.

    Like the real agent: each leased job is "measured" (``pace.job_s``), its result waits for the rest of the
    batch unless the oldest waiting result is ``push_interval_s`` old, and what waits is pushed before the
    next lease request, at most ``push_batch`` results per push. Its leases are renewed by a heartbeat every
    ``heartbeat_interval_s`` the collector gave it, on a connection of its own. With a measuring time,
    agents start at random
    moments within one batch's time and each job takes 0.5-1.5x the mean, as agents on real devices do: agents
    started in lockstep would keep arriving together and measure a herd rather than a fleet.
    """
    http, beat = connections
    headers = {"Authorization": f"Bearer {enrolled.agent_token}", "Content-Type": "application/json"}
    lease_body = LeaseRequest(max_jobs=pace.lease_batch).model_dump_json()
    pushed = 0
    held: list[JobSpec] = []
    waiting: list[JobSpec] = []
    since = 0.0
    done = asyncio.Event()

    async def heartbeat(rng: random.Random) -> None:
        interval = enrolled.heartbeat_interval_s
        while not await wait_or_timeout(done, interval * rng.uniform(0.5, 1.5)):
            body = HeartbeatRequest(lease_ids=[j.lease_id for j in held + waiting]).model_dump_json()
            t0 = time.perf_counter()
            try:
                response = await beat.post("/heartbeat", content=body, headers=headers)
            except httpx.HTTPError as exc:
                load.failures.append(f"heartbeat: {exc!r}")
                return
            load.heartbeat_ms.append((time.perf_counter() - t0) * 1e3)
            if response.status_code != 200:
                load.failures.append(f"heartbeat: {response.status_code} {response.text[:200]}")

    async def flush() -> bool:
        nonlocal pushed
        while waiting:
            batch, waiting[:] = waiting[: pace.push_batch], waiting[pace.push_batch :]
            if not await push(http, headers, result_batch(batch, pool, pushed), load):
                return False
            pushed += len(batch)
        return True

    async def work(rng: random.Random) -> None:
        nonlocal since
        first = True
        if pace.job_s:
            await asyncio.sleep(rng.uniform(0, pace.lease_batch * pace.job_s))
        while True:
            if not await flush():
                return
            if time.perf_counter() >= deadline:
                load.timed_out = True
                return
            t0 = time.perf_counter()
            load.first_lease = t0 if load.first_lease is None else min(load.first_lease, t0)
            try:
                response = await http.post("/leases", content=lease_body, headers=headers)
            except httpx.HTTPError as exc:
                load.failures.append(f"lease: {exc!r}")
                return
            t1 = time.perf_counter()
            load.lease_ms.append((t1 - t0) * 1e3)
            load.lease_spans.append((t0, t1))
            if response.status_code != 200:
                load.failures.append(f"lease: {response.status_code} {response.text[:200]}")
                return
            held[:] = LeaseGrant.model_validate_json(response.content).jobs
            if not held:
                load.done_at.append(t1)
                return
            if first:
                load.first_grants.append(t1)
                first = False
            while held:
                if pace.job_s:
                    await asyncio.sleep(pace.job_s * rng.uniform(0.5, 1.5))
                if not waiting:
                    since = time.perf_counter()
                waiting.append(held.pop(0))
                if time.perf_counter() - since >= pace.push_interval_s and not await flush():
                    return

    rng = random.Random(f"{pace.seed}-{enrolled.agent_id}")
    await start.wait()
    beating = asyncio.create_task(heartbeat(random.Random(rng.random())))
    try:
        await work(rng)
    finally:
        done.set()
        await beating


async def push(http: httpx.AsyncClient, headers: dict[str, str], batch: ResultBatch, load: Load) -> bool:
    """Push one batch and record its latency and acks; say whether it was accepted."""
    body = batch.model_dump_json()
    t0 = time.perf_counter()
    try:
        response = await http.post("/results", content=body, headers=headers)
    except httpx.HTTPError as exc:
        load.failures.append(f"push: {exc!r}")
        return False
    t1 = time.perf_counter()
    if response.status_code != 200:
        load.failures.append(f"push: {response.status_code} {response.text[:200]}")
        return False
    load.push_ms.append((t1 - t0) * 1e3)
    load.push_spans.append((t0, t1))
    load.push_sizes.append(len(batch.results))
    load.last_ack = t1 if load.last_ack is None else max(load.last_ack, t1)
    for ack in ResultBatchResponse.model_validate_json(response.content).acks:
        load.acks[ack.status] += 1
        if ack.status == "stored":
            load.stored.add(str(ack.result_id))
    return True


async def run_agents(url: str, enroll_token: str, collector_pid: int, db_url: str, args: argparse.Namespace) -> Load:
    """Enroll ``args.agents`` agents, then run them all at once; return what they saw and the CPU it took."""
    pool = measurements(SAMPLE_POOL, args.runs, args.seed)
    load = Load()
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    # Two connections per agent, as ``latbench agent run`` has: its work, and its heartbeat thread's own client.
    clients, beats = (
        [
            httpx.AsyncClient(base_url=url + API_PREFIX, timeout=REQUEST_TIMEOUT_S, limits=limits)
            for _ in range(args.agents)
        ]
        for _ in range(2)
    )
    try:

        async def enroll(http: httpx.AsyncClient, i: int) -> EnrollResponse:
            response = await http.post(
                "/enroll",
                json=enroll_request(i).model_dump(mode="json"),
                headers={"Authorization": f"Bearer {enroll_token}"},
            )
            response.raise_for_status()
            return EnrollResponse.model_validate_json(response.content)

        enrolled = await asyncio.gather(*(enroll(http, i) for i, http in enumerate(clients)))
        start = asyncio.Event()
        cpu = (time.process_time(), collector_cpu_s(collector_pid), machine_busy_s(), database_cpu(db_url))
        deadline = time.perf_counter() + args.max_seconds
        tasks = [
            asyncio.create_task(agent((http, beat), answer, pace(args), pool, start, deadline, load))
            for http, beat, answer in zip(clients, beats, enrolled)
        ]
        probe = asyncio.create_task(lag_probe(load))
        # Fifty real agents are fifty processes, and one's collection pauses stop no other; here they share one
        # interpreter, so it keeps collection pauses out of the latencies it measures as the collector does.
        settle_heap()
        start.set()
        await asyncio.gather(*tasks)
        probe.cancel()
        load.client_cpu_s = time.process_time() - cpu[0]
        load.collector_cpu_s = spent(cpu[1], collector_cpu_s(collector_pid))
        load.machine_busy_s = spent(cpu[2], machine_busy_s())
        load.database_cpu_s = database_spent(cpu[3], database_cpu(db_url))
        return load
    finally:
        await asyncio.gather(*(http.aclose() for http in clients + beats))


@dataclass(frozen=True)
class Check:
    export_rows: int
    export_pairs: int
    db_results: int
    db_result_jobs: int
    db_done_jobs: int
    lost: int
    duplicated: int
    missing: int


def check(client: CollectorClient, campaign_id: str, url: str, expected: int, stored: set[str]) -> Check:
    """Lost: acked ``stored`` but absent from the store; duplicated: a second row for one (device, arch) in the
    export or one job in the results table; missing: jobs of the campaign not done (a time cap cut the run)."""
    pairs = Counter((row["device"], row["arch"]) for row in client.iter_results(campaign_id))
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            ids = set(conn.scalars(sa.select(ResultRow.id)))
            result_jobs = conn.scalar(sa.select(sa.func.count(sa.distinct(ResultRow.job_id)))) or 0
            done = conn.scalar(
                sa.select(sa.func.count())
                .select_from(JobRow)
                .where(JobRow.campaign_id == campaign_id, JobRow.state == "done")
            )
    finally:
        engine.dispose()
    duplicated = max(sum(pairs.values()) - len(pairs), len(ids) - result_jobs)
    return Check(
        export_rows=sum(pairs.values()),
        export_pairs=len(pairs),
        db_results=len(ids),
        db_result_jobs=result_jobs,
        db_done_jobs=done or 0,
        lost=len(stored - ids),
        duplicated=duplicated,
        missing=expected - len(pairs),
    )


def raw_inserts(url: str, batch: int) -> tuple[int, float]:
    """Insert the stored results' rows again, into a scratch table with the same columns and no constraints but
    its primary key, ``batch`` rows per transaction; return the row count and the seconds it took."""
    columns = [sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable) for c in ResultRow.__table__.c]
    scratch = sa.Table(RAW_TABLE, sa.MetaData(), *columns)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = [dict(row) for row in conn.execute(sa.select(ResultRow.__table__)).mappings()]
        scratch.drop(engine, checkfirst=True)
        scratch.create(engine)
        t0 = time.perf_counter()
        for i in range(0, len(rows), batch):
            with engine.begin() as conn:
                conn.execute(scratch.insert(), rows[i : i + batch])
        elapsed = time.perf_counter() - t0
        scratch.drop(engine)
    finally:
        engine.dispose()
    return len(rows), elapsed


@contextlib.contextmanager
def store_url(store: str, scratch: Path) -> Iterator[str]:
    if store == "sqlite":
        yield f"sqlite:///{scratch / 'collector.sqlite'}"
        return
    with postgres_server() as server:
        yield create_database(server, "collector_load")


def wait_built(client: CollectorClient, campaign_id: str, timeout_s: float) -> float:
    t0 = time.perf_counter()
    while (status := client.campaign(campaign_id)).state == "building":
        if time.perf_counter() - t0 > timeout_s:
            raise SystemExit(f"artifacts not built within {timeout_s:.0f} s; raise --build-timeout")
        time.sleep(0.5)
    if status.state == "failed":
        raise SystemExit(f"the campaign failed: {status.error}")
    return time.perf_counter() - t0


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


@dataclass(frozen=True)
class Figures:
    """One store's outcome, as printed in the closing table."""

    results_per_s: float
    p99_push_ms: float
    raw_rows_per_s: float
    checked: Check

    @property
    def ratio(self) -> float:
        return self.results_per_s / self.raw_rows_per_s if self.raw_rows_per_s else float("nan")


def pace(args: argparse.Namespace) -> Pace:
    job_s = args.agents / args.rate if args.rate else 0.0
    return Pace(args.lease_batch, args.push_batch, args.push_interval, job_s, args.seed)


def campaign_run(store: str, args: argparse.Namespace) -> tuple[Load, Check, int, float]:
    """Serve ``store`` from a real collector process, run the agents, check the results, time the raw inserts."""
    expected = args.archs * args.agents
    cache = default_root()
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="collector-load-") as tmp, store_url(store, Path(tmp)) as url:
        extra = ("--workers", str(args.workers))
        collector = Collector(url, Path(tmp) / "collector", free_port(), args.lease_ttl, cache, *extra).start()
        try:
            with CollectorClient(collector.url, ADMIN_TOKEN) as client:
                enroll_token = client.create_enrollment_token("collector-load").token
                spec = CampaignCreate(
                    space="nb201", samples=args.archs, seed=args.seed, runtime=RUNTIME, name="collector-load"
                )
                campaign_id = client.create_campaign(spec)
                print(f"  artifacts      : ready after {wait_built(client, campaign_id, args.build_timeout):.1f} s")
                assert collector.proc is not None
                load = asyncio.run(run_agents(collector.url, enroll_token, collector.proc.pid, url, args))
                checked = check(client, campaign_id, url, expected, load.stored)
        finally:
            code = collector.stop()
            if code not in (0, None):
                print(f"  collector exited with {code}; its log ends:\n{collector.log.read_text()[-2000:]}")
        rows, raw_s = raw_inserts(url, args.lease_batch)
    return load, checked, rows, raw_s


def cpu_line(load: Load, wall: float, results: int) -> str:
    """Where the CPU went during the load: the collector process, the database server, the simulated agents,
    the whole machine (other work on a shared machine included)."""
    if wall <= 0:
        return "no load"
    parts = []
    for name, cpu in (("collector", load.collector_cpu_s), ("postgres", load.database_cpu_s)):
        if cpu is not None:
            per_result = f", {1e3 * cpu / results:.2f} ms per result" if results else ""
            parts.append(f"{name} {cpu:.1f} s ({100 * cpu / wall:.0f} % of a core{per_result})")
    parts.append(f"agents {load.client_cpu_s:.1f} s ({100 * load.client_cpu_s / wall:.0f} %, one process)")
    if load.machine_busy_s is not None:
        parts.append(f"machine {load.machine_busy_s / wall:.2f} of {os.cpu_count()} cores busy")
    return "; ".join(parts)


def service_ms_per_result(load: Load, results: int) -> float | None:
    """CPU milliseconds the collector and its database spent per result: what a result costs the service."""
    if load.collector_cpu_s is None or not results:
        return None
    return 1e3 * (load.collector_cpu_s + (load.database_cpu_s or 0.0)) / results


def capacity_line(load: Load, results: int) -> str:
    """The CPU a result cost, and the rate that CPU allows on this machine's cores with nothing else running: on
    a shared machine the measured rate says more about the neighbours than about the collector."""
    service = service_ms_per_result(load, results)
    if service is None:
        return "unknown (no /proc)"
    agents = 1e3 * load.client_cpu_s / results
    cores = os.cpu_count() or 1
    return (f"service (collector + database) {service:.2f} ms, agents {agents:.2f} ms; all of it on {cores} idle "
            f"cores allows {1e3 * cores / (service + agents):,.0f} results/s")  # fmt: skip


def steady(load: Load) -> tuple[float, float] | None:
    """The window in which every agent offered load: from the last agent's first grant (every device has
    joined, its jobs created) to the first agent running out of jobs."""
    if len(load.first_grants) < len(load.done_at) or not load.first_grants or not load.done_at:
        return None
    start, end = max(load.first_grants), min(load.done_at)
    return (start, end) if end > start else None


def steady_line(load: Load) -> str:
    """Rate and latency inside the steady window: what a fleet that has joined sees, without the one-time
    join of every device at the start and the thinning tail at the end."""
    window = steady(load)
    if window is None:
        return "no steady window (too few jobs per agent)"
    start, end = window
    inside = [(t0, t1, n) for (t0, t1), n in zip(load.push_spans, load.push_sizes) if t0 >= start and t1 <= end]
    results = sum(n for _, _, n in inside)
    push = [(t1 - t0) * 1e3 for t0, t1, _ in inside]
    lease = [(t1 - t0) * 1e3 for t0, t1 in load.lease_spans if t0 >= start and t1 <= end]
    return (f"{end - start:.1f} s, {results / (end - start):,.0f} results/s; push p50 {pct(push, 50):.1f} ms, "
            f"p99 {pct(push, 99):.1f} ms ({len(push)}); lease p50 {pct(lease, 50):.1f} ms, "
            f"p99 {pct(lease, 99):.1f} ms ({len(lease)})")  # fmt: skip


def bench(store: str, args: argparse.Namespace) -> Figures:
    expected = args.archs * args.agents
    print(f"\n== {store}: {args.archs} archs x {args.agents} agents = {expected} jobs, ", end="")
    offered = f"offered {args.rate:,.0f} results/s" if args.rate else "no measuring time (saturation)"
    print(f"lease batch {args.lease_batch}, push interval {args.push_interval:g} s, {offered}, ", end="")
    print(f"{args.runs} runs per result")
    load, checked, rows, raw_s = campaign_run(store, args)
    wall = (load.last_ack or 0.0) - (load.first_lease or 0.0)
    results = sum(load.push_sizes)
    rate = results / wall if wall > 0 else 0.0
    raw_rate = rows / raw_s if raw_s > 0 else 0.0
    per_result = [ms / n for ms, n in zip(load.push_ms, load.push_sizes)]
    capped = "; stopped by --max-seconds" if load.timed_out else ""
    lines = {
        "load": f"{results} results in {wall:.2f} s = {rate:,.0f} results/s (first lease to last ack){capped}",
        "cpu": cpu_line(load, wall, results),
        "cpu per result": capacity_line(load, results),
        "push latency": f"p50 {pct(load.push_ms, 50):.1f} ms, p99 {pct(load.push_ms, 99):.1f} ms "
        f"({len(load.push_ms)} pushes); per result p50 {pct(per_result, 50):.2f} ms, p99 {pct(per_result, 99):.2f} ms",
        "lease latency": f"p50 {pct(load.lease_ms, 50):.1f} ms, p99 {pct(load.lease_ms, 99):.1f} ms "
        f"({len(load.lease_ms)} requests)",
        "steady state": steady_line(load),
        "agents' loop": f"timer lag p50 {pct(load.loop_lag_ms, 50):.1f} ms, p99 {pct(load.loop_lag_ms, 99):.1f} ms "
        "(time the simulated agents' own process adds to every latency above)",
        "heartbeats": f"{len(load.heartbeat_ms)}, p50 {pct(load.heartbeat_ms, 50):.1f} ms, "
        f"p99 {pct(load.heartbeat_ms, 99):.1f} ms",
        "acks": ", ".join(f"{status} {n}" for status, n in sorted(load.acks.items())) or "none",
        **{f"FAILED {i + 1}": failure for i, failure in enumerate(load.failures[:5])},
        "check": f"export {checked.export_rows} rows for {checked.export_pairs} (device, arch) pairs; store "
        f"{checked.db_results} results for {checked.db_result_jobs} jobs, {checked.db_done_jobs} jobs done",
        "": f"lost {checked.lost}, duplicated {checked.duplicated}, missing {checked.missing} of {expected}",
        "raw inserts": f"{rows} rows in {raw_s:.2f} s = {raw_rate:,.0f} rows/s "
        f"(batches of {args.lease_batch}, one transaction each)",
    }
    for label, text in lines.items():
        print(f"  {label:<15}{':' if label else ' '} {text}")
    figures = Figures(rate, pct(load.push_ms, 99), raw_rate, checked)
    print(f"  {'API / raw':<15}: {figures.ratio:.3f}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stores", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    parser.add_argument("--archs", type=int, default=40, help="NB201 architectures in the campaign (default 40)")
    parser.add_argument("--agents", type=int, default=50, help="simulated agents, each its own device (default 50)")
    parser.add_argument(
        "--lease-batch", type=int, default=10, help="jobs per lease, an agent's --max-jobs (default 10)"
    )
    parser.add_argument(
        "--push-batch", type=int, default=PUSH_BATCH, help=f"most results per push (default {PUSH_BATCH}, as the agent)"
    )
    parser.add_argument(
        "--push-interval", type=float, default=PUSH_INTERVAL_S,
        help=f"longest a result waits for the rest of its batch (default {PUSH_INTERVAL_S:g} s, as the agent's "
        "--push-interval; 0 pushes after every job)",
    )  # fmt: skip
    parser.add_argument(
        "--rate", type=float, default=0.0,
        help="results per second the agents offer together, each job taking agents/rate seconds to 'measure' "
        "(default 0: no measuring time, as fast as the collector answers)",
    )  # fmt: skip
    parser.add_argument(
        "--lease-ttl", type=float, default=60.0, help="the collector's --lease-ttl; heartbeats come 3 times per TTL"
    )
    parser.add_argument("--workers", type=int, default=1, help="collector processes (its --workers; default 1)")
    parser.add_argument("--runs", type=int, default=200, help="per-run times in each result (default 200)")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="cap on the load phase (default 120)")
    parser.add_argument("--build-timeout", type=float, default=600.0, help="cap on artifact export (default 600)")
    parser.add_argument("--seed", type=int, default=0, help="architecture sample and synthetic times (default 0)")
    args = parser.parse_args()
    if not (1 <= args.archs <= 1000 and 1 <= args.agents <= 500 and 1 <= args.lease_batch <= 64 and args.runs >= 1):
        parser.error("need 1 <= --archs <= 1000, 1 <= --agents <= 500, 1 <= --lease-batch <= 64, --runs >= 1")
    if not 1 <= args.push_batch <= PUSH_BATCH:
        parser.error(f"need 1 <= --push-batch <= {PUSH_BATCH}")
    if args.push_interval < 0 or args.rate < 0:
        parser.error("need --push-interval >= 0 and --rate >= 0")

    summary = {store: bench(store, args) for store in args.stores}
    print("\nstore        results/s   p99 push ms   raw rows/s   API/raw   lost  duplicated  missing")
    for store, f in summary.items():
        c = f.checked
        print(
            f"{store:<12} {f.results_per_s:>9,.0f}   {f.p99_push_ms:>11.1f}   {f.raw_rows_per_s:>10,.0f}   "
            f"{f.ratio:>7.3f}   {c.lost:>4}  {c.duplicated:>10}  {c.missing:>7}"
        )


if __name__ == "__main__":
    main()
