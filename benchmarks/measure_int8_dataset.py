"""Measure the int8 datasets shipped with latbench (``here-nb201-int8``): seeded architectures of a space, each
timed with ONNX Runtime on this CPU as its statically quantised int8 model and as its float32 model.

Two steps. ``measure`` times the architectures in chunks, fp32 then int8 for each chunk, so a busy spell of
the machine hits both devices alike; it appends to one results file per precision under ``--work`` and resumes
where it stopped. ``build`` turns the results files into the built-in dataset (devices ``cpu_ort_fp32`` and
``cpu_ort_int8``), keeping each result's fastest run (``min_ms``: on a machine this busy, a median mostly
measures other processes' time slices), with a card that says how, where and when it was measured and how many
results the stability checks flagged. On a machine shared with other work, keep each measurement short and let
``--wait-idle-max`` bound the wait for a quiet moment. A second process can take the later part of the sample
(``--first``) into its own folder; ``build`` reads every ``--work`` folder and keeps the architectures measured
at both precisions:

    nice -n 5 env OMP_NUM_THREADS=1 python benchmarks/measure_int8_dataset.py measure --samples 300
    nice -n 5 env OMP_NUM_THREADS=1 python benchmarks/measure_int8_dataset.py measure --samples 300 --first 150 \
        --work int8-results/part2
    python benchmarks/measure_int8_dataset.py build --work int8-results --work int8-results/part2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
from pathlib import Path

import numpy as np

from latbench.agents.measure import TimingSettings
from latbench.agents.quiet import QuietPolicy
from latbench.datasets import space_archs, storage
from latbench.datasets.build import build_from_rows
from latbench.datasets.model import new_provenance
from latbench.local import measure, select_archs
from latbench.resultfile import read_results
from latbench.spaces import get_space
from latbench.stability import is_unstable, looks_busy

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "latbench" / "datasets" / "data"
PRECISIONS = ("fp32", "int8")
SETTINGS = TimingSettings(
    warmup_runs=5, warmup_time_s=0.1, min_runs=20, min_time_s=0.2, max_time_s=2.0, cv_threshold=0.2, max_attempts=3
)
"""Short measurements (about 0.3 s of timed runs each), repeated up to three times while unstable."""
DESCRIPTIONS = {
    "cpu_ort_fp32": "ONNX Runtime CPU, 1 thread, float32 model",
    "cpu_ort_int8": "ONNX Runtime CPU, 1 thread, int8 model (static QDQ quantisation, U8S8, per-channel weights)",
}


def results_path(work: Path, space: str, precision: str) -> Path:
    return work / f"{space}-{precision}.csv"


def sample(space: str, samples: int, seed: int) -> list[str]:
    """The space's seeded sample where it lists its members (NB201), else a seeded draw from its built-in public
    table (FBNet: ``help-fbnet``'s 5,000), so the public devices measured the same architectures."""
    if get_space(space).archs() is not None:
        return select_archs(space, None, samples, seed, connected_only=False)
    pool = space_archs(space)
    return [pool[i] for i in np.random.default_rng(seed).choice(len(pool), samples, replace=False)]


def measure_all(space: str, samples: int, seed: int, chunk: int, first: int, work: Path, wait_idle_max: float) -> None:
    """Measure the seeded sample from its ``first`` architecture on (a second process can take a later part)."""
    work.mkdir(parents=True, exist_ok=True)
    archs = sample(space, samples, seed)
    quiet = QuietPolicy(max_wait_s=wait_idle_max)
    for start in range(first, len(archs), chunk):
        part = archs[start : start + chunk]
        for precision in PRECISIONS:
            rows = measure(
                space,
                part,
                runtime="onnxruntime",
                precision=precision,
                threads=1,
                settings=SETTINGS,
                out=results_path(work, space, precision),
                quiet=quiet,
            )
            unstable = sum(is_unstable(r) for r in rows)
            done = start + len(part)
            print(f"{space} {precision}: {done}/{len(archs)}, {unstable} of this chunk unstable", flush=True)


def build(space: str, works: list[Path], name: str) -> Path:
    measured = {p: [r for work in works for r in read_results(results_path(work, space, p))] for p in PRECISIONS}
    both = set.intersection(*({str(r["arch"]) for r in measured[p]} for p in PRECISIONS))
    rows = [
        {**r, "latency_ms": r["min_ms"], "device": f"cpu_ort_{p}"}
        for p in PRECISIONS
        for r in measured[p]
        if r["arch"] in both
    ]
    flagged = {p: sum(is_unstable(r) for r in rows if r["precision"] == p) for p in PRECISIONS}
    counts = {p: sum(r["precision"] == p for r in rows) for p in PRECISIONS}
    stamps = sorted(str(r["measured_at"]) for r in rows)
    raw = [r for p in PRECISIONS for r in measured[p]]
    spread = max(float(str(r["latency_ms"])) / float(str(r["min_ms"])) for r in raw)
    loads = sorted(float(str(r["env_load_1m_before"])) for r in raw if r.get("env_load_1m_before") not in (None, ""))
    cores = int(str(rows[0]["env_cores_logical"]))
    load = f"load average {loads[len(loads) // 2]:.1f} median, {loads[-1]:.1f} at most" if loads else "load unknown"
    busy = bool(loads) and looks_busy(loads[len(loads) // 2], cores)
    if busy:
        where = (
            f"Measured on a {cores}-core machine ({rows[0]['env_cpu_model']}; {load}) while other work ran on it: "
            "the measurements are noisier than on an idle machine, and a run longer than a scheduler time slice "
            f"often waited out other processes' slices (a median up to {spread:.1f} times the fastest run)"
        )
    else:
        where = (
            f"Measured on a {cores}-core machine that looked idle ({rows[0]['env_cpu_model']}; {load}; a result's "
            f"median at most {spread:.2f} times its fastest run)"
        )
    caveat = (
        f"{where}. Each latency here is the result's fastest run, not its median. Each measurement was short (at "
        "least 20 runs and 0.2 s), waited up to the wait-idle bound for other processes to calm down and was "
        "repeated up to 3 times while unstable; results still flagged unstable are kept (their fastest run is the "
        "best reading there is): " + ", ".join(f"{flagged[p]} of {counts[p]} {p}" for p in PRECISIONS) + "."
    )
    built = build_from_rows(
        rows,
        name=name,
        provenance=new_provenance(
            "builtin",
            source=(
                f"measured with latbench {rows[0]['latbench_version']} (benchmarks/measure_int8_dataset.py), "
                f"ONNX Runtime {rows[0]['runtime_version']} CPU, 1 thread, batch 1, on {platform.node()} "
                f"from {stamps[0]} to {stamps[-1]}"
            ),
            method=(
                "cpu_ort_int8: the ONNX network statically quantised with onnxruntime.quantization.quantize_static "
                "(QDQ, uint8 activations, int8 per-channel weights, MinMax calibration on 8 generated standard-"
                "normal inputs); cpu_ort_fp32: the same architectures' float32 ONNX network. Latency: the fastest "
                "of each result's timed runs (min_ms)"
            ),
            results=len(rows),
            unstable=flagged,
            license="MIT (latbench)",
            caveat=caveat,
        ),
        source="measured with latbench on this project's development machine",
        license="MIT",
        include_unstable=True,
    )
    cpu = f"{rows[0]['env_cpu_model']}, {cores} logical cores" + (" shared with other work" if busy else "")
    ds = dataclasses.replace(
        built,
        devices=tuple(dataclasses.replace(d, description=f"{DESCRIPTIONS[d.name]}; {cpu}") for d in built.devices),
    )
    target = DATA / name
    target.mkdir(parents=True, exist_ok=True)
    storage.write(ds, target)
    print(json.dumps({"dataset": str(target), "archs": len(ds.archs), "unstable": flagged, "results": counts}))
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["measure", "build"])
    parser.add_argument("--space", default="nb201", choices=["nb201", "fbnet"])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--chunk", type=int, default=25, help="Architectures per precision before switching.")
    parser.add_argument("--first", type=int, default=0, help="Start at this architecture of the sample.")
    parser.add_argument("--wait-idle-max", type=float, default=5.0, help="Seconds to wait for idle per attempt.")
    parser.add_argument(
        "--work",
        type=Path,
        action="append",
        help="Folder of the results files (build: repeatable; default int8-results).",
    )
    parser.add_argument("--name", default=None, help="Dataset name (default here-<space>-int8).")
    args = parser.parse_args()
    works = args.work or [ROOT / "int8-results"]
    if args.step == "measure":
        measure_all(args.space, args.samples, args.seed, args.chunk, args.first, works[0], args.wait_idle_max)
    else:
        build(args.space, works, args.name or f"here-{args.space}-int8")


if __name__ == "__main__":
    main()
