"""A probe for issue 18's target (a): ``adaptive_sampling.py`` with a sparse cost member added to the fast transfer.

    nice -n 5 env OMP_NUM_THREADS=1 python benchmarks/adaptive_sparse_member.py --tasks F1,F2,F3,F4,OA,O1 \
        --trials 2 --draws 2 --samples 10,15,20 --out sparse.json
    nice -n 5 env OMP_NUM_THREADS=1 python benchmarks/adaptive_sparse_member.py --shipped ...   # the same, without it

The member fits ridge on only the ``--k`` cost features most correlated (absolute Pearson) with the device's
results: ten results cannot pin down fifteen cost features (fbnet) for a device family the sources do not
contain, but they can pin down four. It lives here, not in ``latbench.predictor.members``, until it is judged with
the default method's figures too (docs/benchmarks.md, "Adaptive sampling"). Every other argument is
``adaptive_sampling.py``'s.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from latbench.predictor import adaptive, members
from latbench.predictor.stats import ridge_fit

sys.path.insert(0, str(Path(__file__).parent))
import adaptive_sampling

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


def main() -> None:
    args = sys.argv[1:]
    k = 4
    if "--k" in args:
        i = args.index("--k")
        k = int(args[i + 1])
        del args[i : i + 2]
    if "--shipped" in args:
        args.remove("--shipped")
    else:
        register(k)
    sys.argv = [sys.argv[0], *args]
    adaptive_sampling.main()


if __name__ == "__main__":
    main()
