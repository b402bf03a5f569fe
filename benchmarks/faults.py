"""Exactly once through faults: a campaign on PostgreSQL served by two collector replicas, one killed with
SIGKILL and PostgreSQL restarted while real agents measure.

The replicas share only the store (each has its own artifacts directory; artifacts travel through the store)
and sit behind a TCP load balancer that closes idle connections, so agents keep switching between them. Once
the first results are in, the first replica is killed with SIGKILL; a second later PostgreSQL restarts with
``pg_ctl restart -m immediate`` (every connection and advisory lock gone); after the next result the killed
replica starts again. Printed: architectures, results stored, stored twice (duplicated), never stored (lost),
measured more than once by the agents (remeasured), error results, agents that did not exit cleanly, the
seconds from the restart to the next stored result, and the whole run's wall time.

    python benchmarks/faults.py                          # 40 architectures, 3 agents
    python benchmarks/faults.py --archs 80 --agents 4

The first replica builds the artifacts into the shared artifact cache (``$LATBENCH_CACHE_DIR``, else
``~/.cache/latbench/artifacts``), so later runs skip the exports. Needs the Debian ``postgresql`` server
binaries (``.ci/run`` installs them).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tests.support starts services

from latbench.artifacts import default_root
from tests.support import fault_run
from tests.support.postgres import postgres_cluster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", type=int, default=40)
    parser.add_argument("--agents", type=int, default=3)
    parser.add_argument("--max-jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=41)
    parser.add_argument("--json", action="store_true", help="print the counts as one JSON object")
    args = parser.parse_args()
    plan = fault_run.Plan(archs=args.archs, agents=args.agents, max_jobs=args.max_jobs, seed=args.seed,
                          timeout_s=900)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="latbench-faults-") as scratch, postgres_cluster() as cluster:
        counts = fault_run.run(
            cluster, Path(scratch), default_root(), plan, say=lambda line: print(line, file=sys.stderr)
        )
    if args.json:
        print(json.dumps(counts))
        return
    print(f"architectures {counts['total']}: stored {counts['stored']}, duplicated {counts['duplicated']}, "
          f"lost {counts['lost']}, remeasured {counts['remeasured']}, error results {counts['errors']}, "
          f"agents failed {counts['agents_failed']}")  # fmt: skip
    print(f"first result {counts['resumed_s']:.1f} s after PostgreSQL restarted; {counts['wall_s']:.0f} s in all")


if __name__ == "__main__":
    main()
