"""What does measuring through the SSH runner cost, per architecture, against measuring the same networks here?

Starts a real sshd on loopback (the "remote device" is this machine, so latencies must agree) and measures
each architecture twice, interleaved: locally (load into ONNX Runtime, the timing loop) and through the SSH runner
with the ``stub`` tool (upload over SFTP, a fresh Python on the device runs the same loop, parse, clean up).
The artifacts are exported in a child process, so this one never loads torch (its threads would slow local runs).
Prints the per-architecture wall time of both and their ratio, the fixed cost per job (remote wall - local
wall), how well the latencies agree (SRCC, median ratio), and the one-off cost of opening the runner.

    python benchmarks/remote_overhead.py --samples 20          # NB201, batch 1, 1 thread, default settings
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tests.support starts sshd

import latbench
from latbench.agents.measure import TimingSettings, time_model
from latbench.agents.remote import open_runner
from latbench.agents.runtimes.onnxruntime import OnnxRuntime
from latbench.artifacts import OPSET, ArtifactCache, ArtifactKey
from tests.support.sshd import sshd_server


def _build(keys: list[ArtifactKey]) -> list[str]:
    return [str(a.path) for a in ArtifactCache().build_many(keys)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    space = latbench.get_space("nb201")
    archs = space.sample(args.samples, args.seed)
    keys = [ArtifactKey("nb201", a, 1, 32, space.default_classes, OPSET, 0) for a in archs]
    with multiprocessing.get_context("spawn").Pool(1) as pool:  # torch exports there, never in this process:
        paths = [Path(p) for p in pool.apply(_build, (keys,))]  # its idle threads would slow the local runs
    settings = TimingSettings()

    local_wall, remote_wall, local_ms, remote_ms = [], [], [], []
    with sshd_server() as sshd:
        t0 = time.perf_counter()
        runner = open_runner(sshd.url, command=sys.executable, key_file=sshd.user_key, known_hosts=sshd.known_hosts)
        opened = time.perf_counter() - t0
        with runner:
            runner.offers(["onnxruntime"])
            for i, path in enumerate(paths):
                t0 = time.perf_counter()
                with OnnxRuntime(threads=args.threads) as runtime:
                    runtime.load(path)
                    local = time_model(runtime, settings)
                local_wall.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                remote, _ = runner.measure(path, "onnxruntime", args.threads, "cpu", settings)
                remote_wall.append(time.perf_counter() - t0)
                local_ms.append(local.stats.median_ms)
                remote_ms.append(remote.stats.median_ms)
                ratio = remote_wall[-1] / local_wall[-1]
                print(f"{i + 1:3d} local {local_wall[-1]:6.2f} s {local_ms[-1]:7.3f} ms | remote "
                      f"{remote_wall[-1]:6.2f} s {remote_ms[-1]:7.3f} ms | wall ratio {ratio:.2f}")  # fmt: skip

    lw, rw = np.array(local_wall), np.array(remote_wall)
    lm, rm = np.array(local_ms), np.array(remote_ms)
    print(f"\nopening the runner (connect, host key check, upload of the agent zip): {opened:.2f} s, once")
    print(f"wall per architecture: local median {np.median(lw):.2f} s, remote median {np.median(rw):.2f} s")
    ratio = rw / lw
    print(f"wall ratio remote / local: median {np.median(ratio):.2f} (min {ratio.min():.2f}, max {ratio.max():.2f})")
    print(f"fixed cost per job (remote - local wall): median {np.median(rw - lw):.2f} s")
    print(f"latency agreement: SRCC {spearmanr(lm, rm).statistic:.3f}, median remote/local {np.median(rm / lm):.3f}")


if __name__ == "__main__":
    main()
