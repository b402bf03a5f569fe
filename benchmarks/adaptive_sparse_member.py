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
    """Add the member (fit, predict; needs no source latencies) to the registry and to the fast transfer."""

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


def option(args: list[str], name: str, default: str) -> str:
    """Remove ``name VALUE`` from ``args``; its value, or ``default``."""
    if name not in args:
        return default
    i = args.index(name)
    value = args[i + 1]
    del args[i : i + 2]
    return value


def main() -> None:
    args = sys.argv[1:]
    k = int(option(args, "--k", "4"))
    benchmark = option(args, "--benchmark", "adaptive_sampling")
    if benchmark not in ("adaptive_sampling", "predictor_splits", "predictor_tasks"):
        sys.exit(f"--benchmark must be adaptive_sampling, predictor_splits or predictor_tasks, not {benchmark!r}")
    if "--shipped" in args:
        args.remove("--shipped")
    else:
        register(k)
    sys.argv = [sys.argv[0], *args]
    importlib.import_module(benchmark).main()


if __name__ == "__main__":
    main()
