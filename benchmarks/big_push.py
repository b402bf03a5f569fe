"""Does one large push hold up the collector's other requests? The answer time of ``/v1/health``, polled every
50 ms, while an enrolled agent pushes batches of long ``times_ms`` (the agent endpoints accept up to
``MAX_BODY_BYTES``), against the same polling with no push, in one run against one real collector process.

    python benchmarks/big_push.py                      # 8 results x 500,000 runs (about 30 MiB) a push, 3 pushes
    python benchmarks/big_push.py --results 2 --pushes 5

The pushed results name no leased job, so each is refused (404) once read: what is timed is reading the body.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tests.support starts services

from latbench.artifacts import default_root
from latbench.client import CollectorClient
from latbench.protocol import API_PREFIX, EnrollRequest, EnrollResponse, MachineInfoModel, RuntimeOffer
from tests.support.ports import free_port
from tests.support.processes import ADMIN_TOKEN, Collector


def health_times(url: str, stop: threading.Event, into: list[float]) -> None:
    with httpx.Client(base_url=url, timeout=60) as client:
        while not stop.is_set():
            t0 = time.perf_counter()
            client.get(f"{API_PREFIX}/health")
            into.append(time.perf_counter() - t0)
            time.sleep(0.05)


def polled(url: str, seconds: float | None, work=None) -> list[float]:
    """Health answer times while ``work`` runs (or for ``seconds``)."""
    times: list[float] = []
    stop = threading.Event()
    poller = threading.Thread(target=health_times, args=(url, stop, times))
    poller.start()
    time.sleep(0.3)
    if work is not None:
        work()
    else:
        time.sleep(seconds or 0.0)
    time.sleep(0.3)
    stop.set()
    poller.join()
    return times


def body(results: int, runs: int) -> bytes:
    rng = np.random.default_rng(0)
    items = []
    for _ in range(results):
        times = np.round(rng.uniform(1, 2, runs), 4)
        stats = {"median_ms": float(np.median(times)), "mean_ms": float(times.mean()), "std_ms": float(times.std()),
                 "min_ms": float(times.min()), "max_ms": float(times.max()), "p90_ms": float(times.max()),
                 "p99_ms": float(times.max()), "mad_ms": 0.0, "cv": 0.1, "runs": runs}  # fmt: skip
        items.append(
            f'{{"result_id": "{uuid.uuid4()}", "job_id": "no-job", "lease_id": "no-lease", "stats": '
            + json.dumps(stats)
            + ', "times_ms": ['
            + ",".join(map(str, times.tolist()))
            + f'], "measured_at": "{datetime.now(timezone.utc).isoformat()}"}}'
        )
    return ('{"results": [' + ",".join(items) + "]}").encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=int, default=8, help="results per push (default 8)")
    parser.add_argument("--runs", type=int, default=500_000, help="times_ms per result (default 500,000)")
    parser.add_argument("--pushes", type=int, default=3)
    args = parser.parse_args()
    payload = body(args.results, args.runs)
    print(f"push body: {len(payload) / 2**20:.1f} MiB ({args.results} results x {args.runs:,} runs)")
    with tempfile.TemporaryDirectory(prefix="big-push-") as tmp:
        collector = Collector(f"sqlite:///{tmp}/c.sqlite", Path(tmp) / "c", free_port(), 60, default_root()).start()
        try:
            with CollectorClient(collector.url, ADMIN_TOKEN) as admin:
                enrollment = admin.create_enrollment_token("big-push").token
            machine = MachineInfoModel(cpu_model="simulated", machine=platform.machine(), cores_physical=1,
                                       cores_logical=1, memory_gb=1.0, os="simulated",
                                       python=platform.python_version(), hostname="big-push")  # fmt: skip
            offer = RuntimeOffer(name="onnxruntime", version="1.0.0", providers=["cpu"])
            request = EnrollRequest(name="big-push", fingerprint="0123456789abcdef", machine=machine, runtimes=[offer])
            with httpx.Client(base_url=collector.url, timeout=300) as http:
                answer = http.post(f"{API_PREFIX}/enroll", content=request.model_dump_json(),
                                   headers={"Authorization": f"Bearer {enrollment}",
                                            "Content-Type": "application/json"})  # fmt: skip
                token = EnrollResponse.model_validate_json(answer.content).agent_token
                headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
                statuses: list[int] = []
                took: list[float] = []

                def push() -> None:
                    for _ in range(args.pushes):
                        t0 = time.perf_counter()
                        answered = http.post(f"{API_PREFIX}/results", content=payload, headers=headers)
                        statuses.append(answered.status_code)
                        took.append(time.perf_counter() - t0)

                quiet = polled(collector.url, sum(took) or 3.0)
                loaded = polled(collector.url, None, push)
        finally:
            collector.stop()
    print(f"pushes: {args.pushes}, answered {sorted(set(statuses))}, {np.mean(took):.2f} s each")
    for label, times in (("no push", quiet), ("during pushes", loaded)):
        print(f"/v1/health {label:>13}: median {np.median(times) * 1e3:.1f} ms, max {max(times) * 1e3:.1f} ms "
              f"({len(times)} requests)")  # fmt: skip
    print(f"max during pushes / max with none: {max(loaded) / max(quiet):.1f}x")


if __name__ == "__main__":
    main()
