"""Run a benchmark with members left out of the default ensemble (and so of the adaptive fast transfer, the same
list less the network): the "before" side of a member's ablation, reproducible from the repository.

    nice -n 5 env OMP_NUM_THREADS=1 python benchmarks/ensemble_without.py --without cost-top \
        --benchmark predictor_splits --part report --methods latbench --trials 2
    nice -n 5 env OMP_NUM_THREADS=1 python benchmarks/ensemble_without.py --without cost-top \
        --benchmark predictor_tasks --samples 20,10 --no-speed
    nice -n 5 env OMP_NUM_THREADS=1 python benchmarks/ensemble_without.py --without cost-top \
        --benchmark adaptive_sampling --out adaptive-without.json

``--without`` names the members to drop (comma-separated), ``--benchmark`` the script to run; every other
argument is that script's (its ``--help`` lists them).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from latbench.predictor.predictor import ENSEMBLE

sys.path.insert(0, str(Path(__file__).parent))
BENCHMARKS = ("adaptive_sampling", "predictor_splits", "predictor_tasks", "predictor_ms")


def drop(names: list[str]) -> None:
    """Remove ``names`` from the one ensemble list, in place: the transfer and the adaptive fast transfer read it
    at call time."""
    unknown = [n for n in names if n not in ENSEMBLE]
    if unknown:
        raise SystemExit(f"not in the ensemble: {', '.join(unknown)}; its members: {', '.join(ENSEMBLE)}")
    ENSEMBLE[:] = [m for m in ENSEMBLE if m not in names]


def main() -> None:
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--without", required=True, help="Members to leave out, comma-separated.")
    parser.add_argument("--benchmark", choices=BENCHMARKS, required=True)
    own, rest = parser.parse_known_args()
    drop([n for n in own.without.split(",") if n])
    print(f"ensemble without {own.without}: {', '.join(ENSEMBLE)}", file=sys.stderr)
    sys.argv = [f"{own.benchmark}.py", *rest]
    importlib.import_module(own.benchmark).main()


if __name__ == "__main__":
    main()
