"""Regenerate the encoding tables shipped in latbench/predictor/data/encodings (one thread, resumable).

    nice -n 10 python scripts/compute_encodings.py --space fbnet nb201 --kind zcp arch2vec

Each table is checkpointed beside its target, so running the same command again resumes where it stopped.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from latbench.cli.progress import counting_bars
from latbench.predictor.encodings.compute import compute

DATA = Path(__file__).resolve().parent.parent / "latbench" / "predictor" / "data" / "encodings"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", nargs="+", default=["fbnet", "nb201"])
    parser.add_argument("--kind", nargs="+", default=["zcp", "arch2vec"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DATA)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for kind in args.kind:
        for space in args.space:
            start = time.monotonic()
            with counting_bars() as bars:
                path = compute(space, kind, args.out, seed=args.seed, progress=bars)
            print(f"{path} ({time.monotonic() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
