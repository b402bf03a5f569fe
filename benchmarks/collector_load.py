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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from processes import ADMIN_TOKEN, Collector
from servers import create_database, free_port, postgres_server

import latbench
from latbench.agents.daemon import PUSH_BATCH
from latbench.agents.stats import LatencyStats
from latbench.artifacts import default_root
from latbench.collectors.client import CollectorClient
from latbench.collectors.db import create_engine
from latbench.collectors.models import Job, Result
from latbench.protocol import (
    API_PREFIX,
    CampaignCreate,
    EnrollRequest,
    EnrollResponse,
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
    acks: Counter[str] = field(default_factory=Counter)
    stored: set[str] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)
    first_lease: float | None = None
    last_ack: float | None = None
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


async def agent(
    http: httpx.AsyncClient,
    token: str,
    lease_batch: int,
    push_batch: int,
    pool: list[tuple[LatencyStatsModel, list[float]]],
    start: asyncio.Event,
    deadline: float,
    load: Load,
) -> None:
    """Lease and push until this agent's device has no job left or the deadline passes."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    lease_body = LeaseRequest(max_jobs=lease_batch).model_dump_json()
    pushed = 0
    await start.wait()
    while True:
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
        load.lease_ms.append((time.perf_counter() - t0) * 1e3)
        if response.status_code != 200:
            load.failures.append(f"lease: {response.status_code} {response.text[:200]}")
            return
        grant = LeaseGrant.model_validate_json(response.content)
        if not grant.jobs:
            return
        for i in range(0, len(grant.jobs), push_batch):
            if not await push(http, headers, result_batch(grant.jobs[i : i + push_batch], pool, pushed), load):
                return
            pushed += push_batch


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
    clients = [
        httpx.AsyncClient(base_url=url + API_PREFIX, timeout=REQUEST_TIMEOUT_S, limits=limits)
        for _ in range(args.agents)
    ]
    try:

        async def enroll(http: httpx.AsyncClient, i: int) -> str:
            response = await http.post(
                "/enroll",
                json=enroll_request(i).model_dump(mode="json"),
                headers={"Authorization": f"Bearer {enroll_token}"},
            )
            response.raise_for_status()
            return EnrollResponse.model_validate_json(response.content).agent_token

        agent_tokens = await asyncio.gather(*(enroll(http, i) for i, http in enumerate(clients)))
        start = asyncio.Event()
        cpu = (time.process_time(), process_cpu_s(collector_pid), machine_busy_s(), database_cpu(db_url))
        deadline = time.perf_counter() + args.max_seconds
        tasks = [
            asyncio.create_task(agent(http, token, args.lease_batch, args.push_batch, pool, start, deadline, load))
            for http, token in zip(clients, agent_tokens)
        ]
        start.set()
        await asyncio.gather(*tasks)
        load.client_cpu_s = time.process_time() - cpu[0]
        load.collector_cpu_s = spent(cpu[1], process_cpu_s(collector_pid))
        load.machine_busy_s = spent(cpu[2], machine_busy_s())
        load.database_cpu_s = database_spent(cpu[3], database_cpu(db_url))
        return load
    finally:
        await asyncio.gather(*(http.aclose() for http in clients))


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
            ids = set(conn.scalars(sa.select(Result.id)))
            result_jobs = conn.scalar(sa.select(sa.func.count(sa.distinct(Result.job_id)))) or 0
            done = conn.scalar(
                sa.select(sa.func.count()).select_from(Job).where(Job.campaign_id == campaign_id, Job.state == "done")
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
    columns = [sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable) for c in Result.__table__.c]
    scratch = sa.Table(RAW_TABLE, sa.MetaData(), *columns)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = [dict(row) for row in conn.execute(sa.select(Result.__table__)).mappings()]
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


def campaign_run(store: str, args: argparse.Namespace) -> tuple[Load, Check, int, float]:
    """Serve ``store`` from a real collector process, run the agents, check the results, time the raw inserts."""
    expected = args.archs * args.agents
    cache = default_root()
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="collector-load-") as tmp, store_url(store, Path(tmp)) as url:
        collector = Collector(url, Path(tmp) / "collector", free_port(), lease_ttl_s=60.0, artifacts=cache).start()
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


def bench(store: str, args: argparse.Namespace) -> Figures:
    expected = args.archs * args.agents
    print(f"\n== {store}: {args.archs} archs x {args.agents} agents = {expected} jobs, ", end="")
    print(f"lease batch {args.lease_batch}, push batch {args.push_batch}, {args.runs} runs per result")
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
        "--push-batch", type=int, default=1,
        help="results per push (default 1, as an online agent pushes after each job; up to 100 when it drains "
        "its spool after an outage)",
    )  # fmt: skip
    parser.add_argument("--runs", type=int, default=200, help="per-run times in each result (default 200)")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="cap on the load phase (default 120)")
    parser.add_argument("--build-timeout", type=float, default=600.0, help="cap on artifact export (default 600)")
    parser.add_argument("--seed", type=int, default=0, help="architecture sample and synthetic times (default 0)")
    args = parser.parse_args()
    if not (1 <= args.archs <= 1000 and 1 <= args.agents <= 500 and 1 <= args.lease_batch <= 64 and args.runs >= 1):
        parser.error("need 1 <= --archs <= 1000, 1 <= --agents <= 500, 1 <= --lease-batch <= 64, --runs >= 1")
    if not 1 <= args.push_batch <= PUSH_BATCH:
        parser.error(f"need 1 <= --push-batch <= {PUSH_BATCH}")

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
