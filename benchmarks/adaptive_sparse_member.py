"""A probe for issue 18's target (a): a benchmark run with a sparse cost member added to the ensemble.

    nice -n 5 env OMP_NUM_THREADS=1 python benchmarks/adaptive_sparse_member.py --tasks F1,F2,F3,F4,OA,O1 \
        --trials 2 --draws 2 --samples 10,15,20 --out sparse.json
    nice -n 5 env OMP_NUM_THREADS=1 python benchmarks/adaptive_sparse_member.py --shipped ...   # the same, without it
    python benchmarks/adaptive_sparse_member.py --benchmark predictor_splits --part report --methods latbench
    python benchmarks/adaptive_sparse_member.py --benchmark predictor_tasks --samples 10,20 --trials 2 --no-speed

The member fits ridge on only the ``--k`` cost features most correlated (absolute Pearson) with the device's
results: ten results cannot pin down fifteen cost features (fbnet) for a device family the sources do not
contain, but they can pin down four. It lives here, not in ``latbench.predictor.members``, until it is judged with
the default method's figures too (docs/benchmarks.md, "Adaptive sampling"). It joins both the adaptive fast
transfer and the default method's ensemble. ``--benchmark`` names the script run (``adaptive_sampling`` by
default); every other argument is that script's.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

import numpy as np

from latbench.predictor import adaptive, members
from latbench.predictor.predictor import ENSEMBLE
from latbench.predictor.stats import ridge_fit

sys.path.insert(0, str(Path(__file__).parent))

NAME = "cost-top"


def register(k: int) -> None:
    """Add the member (fit, predict; needs no source latencies) to the registry, the adaptive fast transfer and the
    default method's ensemble."""

    def fit(x: members.Inputs, y: np.ndarray) -> members.Params:
        spread = np.ptp(x.costs, axis=0) > 0
        correlation = [abs(np.corrcoef(x.costs[:, j], y)[0, 1]) if spread[j] else 0.0 for j in range(x.costs.shape[1])]
        top = [int(j) for j in np.argsort(np.nan_to_num(correlation))[::-1][:k]]
        coef, intercept = ridge_fit(x.costs[:, top], y)
        return {"top": top, "coef": coef.tolist(), "intercept": intercept}

    def predict(x: members.Inputs, p: members.Params) -> np.ndarray:
        return x.costs[:, p["top"]] @ np.asarray(p["coef"]) + p["intercept"]

    members.MEMBERS[NAME] = (fit, predict, False)
    adaptive.FAST_MEMBERS = (*adaptive.FAST_MEMBERS, NAME)
    ENSEMBLE.append(NAME)


def main() -> None:
    """Take this probe's own options; every other argument goes to the benchmark it runs (whose ``--help`` shows)."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument(
        "--benchmark", choices=["adaptive_sampling", "predictor_splits", "predictor_tasks"], default="adaptive_sampling"
    )
    parser.add_argument("--shipped", action="store_true", help="Run the benchmark without the member.")
    own, rest = parser.parse_known_args()
    if not own.shipped:
        register(own.k)
    sys.argv = [sys.argv[0], *rest]
    importlib.import_module(own.benchmark).main()


if __name__ == "__main__":
    main()
