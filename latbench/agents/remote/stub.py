"""The device side of the ``stub`` tool: measure one artifact with latbench's own loop, print one JSON line.

Run as ``python -m latbench.agents.remote measure ARTIFACT --runtime onnxruntime --threads 1 --settings JSON``,
``... info``, or ``... serve``: one JSON request per input line (``{"command": "measure", "artifact": ...}``),
one result line each, until the input ends; the runner keeps one ``serve`` per session, so Python and the
engine start once. The end of the input means the runner is gone (it stopped, or its connection dropped): the
process exits at once, even mid-measurement, as nobody would read the answer. The runner uploads latbench's agent
code as a zip and puts it on ``PYTHONPATH``, so the device needs only Python, numpy and the runtime's engine, and
always runs the same loop as the agent.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from latbench.agents.environment import machine_info
from latbench.agents.measure import TimingSettings, time_model
from latbench.agents.remote.parse import LOADED_MARKER, RESULT_MARKER
from latbench.agents.runtimes import available_runtimes, get_runtime
from latbench.errors import LatbenchError


def _measure(args: argparse.Namespace) -> dict[str, Any]:
    settings = TimingSettings(**json.loads(args.settings))
    shapes = json.loads(args.input_shapes) if isinstance(args.input_shapes, str) else args.input_shapes
    runtime = get_runtime(args.runtime)(threads=args.threads, provider=args.provider)
    try:
        started = time.perf_counter()
        runtime.load(Path(args.artifact), input_shapes=shapes or None)
        # a line before the result: the runner's wait for the timing starts now, however long loading took
        print(f"{LOADED_MARKER} in {time.perf_counter() - started:.1f} s", flush=True)
        m = time_model(runtime, settings)
    finally:
        runtime.close()
    return {
        "numpy_version": np.__version__,
        "runtime_version": runtime.version(),
        "settings": runtime.settings(),
        "input_shapes": {name: list(shape) for name, shape in runtime.input_shapes.items()},
        "times_ns": m.times_ns.tolist(),
        "warmup_runs": m.warmup_runs,
        "wall_s": m.wall_s,
        "attempts": m.attempts,
        "stable": m.stable,
        "flags": m.flags,
        "attempt_flags": m.attempt_flags,
        "state_before": asdict(m.state_before) if m.state_before else None,
        "state_after": asdict(m.state_after) if m.state_after else None,
    }


def _info(args: argparse.Namespace) -> dict[str, Any]:
    runtimes = {}
    for name in available_runtimes():
        try:
            runtime = get_runtime(name)
            runtimes[name] = {"version": runtime.version(), "providers": runtime.providers()}
        except Exception:
            continue
    return {"machine": machine_info().snapshot(), "runtimes": runtimes}  # the CPU's identity and ISA too


def _answer(command: str, args: argparse.Namespace) -> int:
    """Print the result line of ``command``; errors become ``{"error": ...}``, never a traceback."""
    try:
        payload = _measure(args) if command == "measure" else _info(args)
        code = 0
    except Exception as exc:
        message = str(exc) if isinstance(exc, LatbenchError) else f"{type(exc).__name__}: {exc}"
        payload, code = {"error": message}, 1
    print(RESULT_MARKER + json.dumps(payload), flush=True)
    return code


def _read_until_eof(lines: queue.Queue[str]) -> None:
    """Queue the input's lines; at its end, exit the process (see the module doc), whatever the main thread does."""
    for line in sys.stdin:
        lines.put(line)
    os._exit(0)


def _serve() -> int:
    defaults = {"runtime": "onnxruntime", "threads": 1, "provider": "cpu", "settings": "{}", "input_shapes": None}
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_read_until_eof, args=(lines,), daemon=True, name="latbench-stub-input").start()
    while True:
        line = lines.get()
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            command = request.pop("command")
        except (ValueError, KeyError, AttributeError, TypeError):
            print(RESULT_MARKER + json.dumps({"error": f"not a request: {line.strip()[:200]}"}), flush=True)
            continue
        _answer(command, argparse.Namespace(**{**defaults, **request}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m latbench.agents.remote", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("measure", help="measure one artifact")
    run.add_argument("artifact")
    run.add_argument("--runtime", default="onnxruntime")
    run.add_argument("--threads", type=int, default=1)
    run.add_argument("--provider", default="cpu")
    run.add_argument("--settings", default="{}", help="TimingSettings as JSON")
    run.add_argument("--input-shapes", default=None, help='a model file\'s input shapes as JSON, {"name": [1, 128]}')
    commands.add_parser("info", help="this machine and the runtimes it can run")
    commands.add_parser("serve", help="answer JSON requests, one per input line, until the input ends")
    args = parser.parse_args(argv)
    return _serve() if args.command == "serve" else _answer(args.command, args)


if __name__ == "__main__":
    sys.exit(main())
