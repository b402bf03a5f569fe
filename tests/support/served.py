"""A real collector on a loopback port for tests: uvicorn in a thread, a real store, a clock the test moves.

Everything is real (HTTP, SQLite or PostgreSQL, the artifact builder); only time is under the test's control,
so lease expiry is tested without sleeping.
"""

from __future__ import annotations

import hashlib
import math
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import uvicorn

from latbench.catalog import DatasetCatalog
from latbench.collectors.db import Store
from latbench.collectors.models import ArtifactRow, Base
from latbench.collectors.service import running, server_config
from tests.support.processes import LATBENCH, env

ADMIN_TOKEN = "lb_admin_served-test-token-0123456789abcdef"
LEASE_TTL_S = 30.0
ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    "|skip_connect~0|+|nor_conv_1x1~0|none~1|+|nor_conv_3x3~0|skip_connect~1|avg_pool_3x3~2|",
    "|nor_conv_1x1~0|+|skip_connect~0|nor_conv_3x3~1|+|none~0|avg_pool_3x3~1|nor_conv_1x1~2|",
    "|none~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|nor_conv_3x3~0|none~1|skip_connect~2|",
]
"""The NB201 cells campaigns use in tests; the session's artifact cache builds each once."""
MACHINE = {
    "cpu_model": "Test CPU",
    "machine": "x86_64",
    "cores_physical": 2,
    "cores_logical": 4,
    "memory_gb": 8.0,
    "os": "Linux-test",
    "python": "3.11.0",
    "hostname": "bench-1",
}


@dataclass
class Clock:
    """The collector's notion of now, moved by the test."""

    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def fingerprint(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:16]


def measurement(job: dict[str, Any], median_ms: float = 1.0, **fields: Any) -> dict[str, Any]:
    """A valid measured result for a leased ``job`` (a ``JobSpec`` as JSON)."""
    return {
        "result_id": str(uuid.uuid4()),
        "job_id": job["job_id"],
        "lease_id": job["lease_id"],
        "stats": {"median_ms": median_ms, "mean_ms": median_ms * 3.1 / 3, "std_ms": 0.1, "min_ms": median_ms * 0.9,
                  "max_ms": median_ms * 1.2, "p90_ms": median_ms * 1.1, "p99_ms": median_ms * 1.2, "mad_ms": 0.05,
                  "cv": 0.1, "runs": 3},
        "times_ms": [median_ms * 0.9, median_ms, median_ms * 1.2],
        "warmup_runs": 10,
        "attempts": 1,
        "flags": [],
        "attempt_flags": [[]],
        "ref_ratio": 1.01,
        "wall_s": 1.5,
        "measured_at": datetime.now(timezone.utc).isoformat(),
        "runtime_version": "1.20.0",
        "optimization": "all",
        "latbench_version": "0.1.0",
        "numpy_version": "2.0.0",
        "state_before": {"load_1m": 0.5, "cpu_freq_mhz": 2400.0, "governor": "performance", "temperature_c": 50.0,
                         "memory_available_gb": 6.0},
        "state_after": {"load_1m": 0.6, "cpu_freq_mhz": 2400.0, "governor": "performance", "temperature_c": 52.0,
                        "memory_available_gb": 6.0},
        **fields,
    }  # fmt: skip


def measured_as(job: dict[str, Any], times_ms: list[float]) -> dict[str, Any]:
    """A measured result for ``job`` whose statistics are those of ``times_ms`` (any finite positive values,
    up to the largest float: the mean is summed in shares, and rounding never takes it past the largest)."""
    ordered = sorted(times_ms)
    below, above = ordered[(len(ordered) - 1) // 2], ordered[len(ordered) // 2]
    median = below + (above - below) / 2
    mean = min(sum(t / len(times_ms) for t in times_ms), ordered[-1])
    stats = {"median_ms": median, "mean_ms": mean, "std_ms": 0.0, "min_ms": ordered[0], "max_ms": ordered[-1],
             "p90_ms": ordered[-1], "p99_ms": ordered[-1], "mad_ms": 0.0, "cv": 0.0, "runs": len(times_ms)}  # fmt: skip
    return measurement(job, stats=stats, times_ms=times_ms)


def failure(job: dict[str, Any], error: str = "runtime crashed") -> dict[str, Any]:
    return {
        "result_id": str(uuid.uuid4()),
        "job_id": job["job_id"],
        "lease_id": job["lease_id"],
        "error": error,
        "measured_at": datetime.now(timezone.utc).isoformat(),
    }


class Harness:
    """A running collector with an admin client; ``agent`` enrolls agents, ``campaign`` creates campaigns."""

    def __init__(self, url: str, store: Store, clock: Clock, verify: Any = True) -> None:
        self.url = url
        self.verify = verify
        self.store = store
        self.clock = clock
        self._clients: list[httpx.Client] = []
        self.admin = self.client(ADMIN_TOKEN)
        self._enroll_token: str | None = None

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._clients.append(httpx.Client(base_url=self.url + "/v1", headers=headers, timeout=60, verify=self.verify))
        return self._clients[-1]

    def close(self) -> None:
        for client in self._clients:
            client.close()

    def enroll_token(self) -> str:
        if self._enroll_token is None:
            response = self.admin.post("/admin/enrollment-tokens", json={"name": "tests"})
            assert response.status_code == 201, response.text
            self._enroll_token = response.json()["token"]
        return self._enroll_token

    def enroll(self, name: str, device: str | None = None, token: str | None = None, **fields: Any) -> httpx.Response:
        """Enroll ``name`` with ``token`` (default: the tests' enrollment token)."""
        body = {
            "name": name,
            "fingerprint": fingerprint(device or name),
            "machine": MACHINE,
            "runtimes": [{"name": "onnxruntime", "version": "1.20.0", "providers": ["cpu"]}],
            **({"device_name": device} if device else {}),
            **fields,
        }
        return self.client(token or self.enroll_token()).post("/enroll", json=body)

    def agent(self, name: str, device: str | None = None, **fields: Any) -> httpx.Client:
        """An HTTP client holding the token of a newly enrolled agent."""
        response = self.enroll(name, device, **fields)
        assert response.status_code == 201, response.text
        return self.client(response.json()["agent_token"])

    def campaign(self, archs: list[str] | None = None, wait: bool = True, **fields: Any) -> str:
        """Create a campaign (default: every test cell) and, with ``wait``, return once its artifacts exist."""
        chosen = {} if "samples" in fields else {"archs": archs or ARCHS}
        response = self.admin.post("/admin/campaigns", json={"space": "nb201", **chosen, **fields})
        assert response.status_code == 201, response.text
        campaign_id = response.json()["campaign_id"]
        if wait:
            self.wait_built(campaign_id)
        return campaign_id

    def run_cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A ``latbench`` command against this collector with the admin token, as a user types it; its outcome."""
        return subprocess.run([*LATBENCH, *args, "--collector", self.url], capture_output=True, text=True,
                              timeout=120, env=env(LATBENCH_ADMIN_TOKEN=ADMIN_TOKEN))  # fmt: skip

    def status(self, campaign_id: str) -> dict[str, Any]:
        response = self.admin.get(f"/admin/campaigns/{campaign_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def wait_built(self, campaign_id: str, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.status(campaign_id)["state"] == "building":
            assert time.monotonic() < deadline, "artifacts were not built in time"
            time.sleep(0.05)

    def dump(self) -> dict[str, list[str]]:
        """Every row of every table, to show that a refused request changed nothing. The artifact builder works
        in the background whatever requests arrive, so an artifact counts by what was asked for (not how far its
        build got) and the stored files (``artifact_blobs``, written by the builder) are left out."""
        asked = (ArtifactRow.key_digest, ArtifactRow.format, ArtifactRow.space, ArtifactRow.arch)
        with self.store.engine.connect() as conn:
            rows = {
                t.name: sorted(map(repr, conn.execute(t.select()).all()))
                for t in Base.metadata.sorted_tables
                if t.name not in ("artifacts", "artifact_blobs")
            }
            rows["artifacts"] = sorted(map(repr, conn.execute(sa.select(*asked)).all()))
        return rows


def extreme_campaign(collector: Harness) -> str:
    """Device ``ulps`` measured medians of 1 ms and one ulp more, device ``huge`` the largest float and one ulp
    less: valid values that leave no room for distinct bin edges or ticks."""
    campaign = collector.campaign()
    largest = sys.float_info.max
    extremes = {"ulps": [1.0, math.nextafter(1.0, 2.0)] * 2 + [1.0],
                "huge": [largest, math.nextafter(largest, 0.0)] * 2 + [largest]}  # fmt: skip
    for device, medians in extremes.items():
        agent = collector.agent(f"agent-{device}", device=device)
        jobs = agent.post("/leases", json={"max_jobs": 5}).json()["jobs"]
        results = [measured_as(job, [median] * 3) for job, median in zip(jobs, medians)]
        response = agent.post("/results", json={"results": results})
        assert response.status_code == 200, response.text
    return campaign


class Served:
    """``running`` plus uvicorn on a free loopback port, in a background thread."""

    def __init__(self, db_url: str, artifacts: Path, clock: Clock, server: dict[str, Any] | None = None,
                 verify: Any = True, **options: Any) -> None:  # fmt: skip
        """``server``: ``server_config``'s options (TLS, header timeout); ``verify``: how the harness's clients
        verify TLS; ``options``: ``running``'s."""
        self._server_options = server or {}
        self._verify = verify
        self._context = running(db_url, artifacts, catalog=DatasetCatalog(), admin_token=ADMIN_TOKEN, clock=clock,
                                lease_ttl_s=LEASE_TTL_S, **options)  # fmt: skip
        self.clock = clock

    def __enter__(self) -> Harness:
        app, _ = self._context.__enter__()
        self._server = uvicorn.Server(server_config(app, "127.0.0.1", 0, **self._server_options))
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            assert self._thread.is_alive() and time.monotonic() < deadline, "the collector did not start"
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        scheme = "https" if self._server.config.is_ssl else "http"
        self._harness = Harness(f"{scheme}://127.0.0.1:{port}", app.state.collector.store, self.clock, self._verify)
        return self._harness

    def __exit__(self, *exc: object) -> None:
        self._harness.close()
        self._server.should_exit = True
        self._thread.join(30)
        self._context.__exit__(None, None, None)
