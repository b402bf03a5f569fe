"""Regenerate the pretrained predictors shipped in latbench/predictor/data/pretrained-SPACE.pt.

    python scripts/build_pretrained_predictor.py [nb201 ofa-mbv3]

Pretrains the default method on every device of each space's built-in dataset (``help-nb201``, ``help-ofa``;
seed 0), all spaces by default. A file keeps the network and statistics only; the source latencies are the
built-in dataset's, referenced by content hash.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from latbench import datasets
from latbench.datasets.registry import BUILTIN_OF_SPACE
from latbench.predictor import pretrain_on
from latbench.predictor.pretrained import SHIPPED

DATA = Path(__file__).resolve().parent.parent / "latbench" / "predictor"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spaces", nargs="*", choices=list(SHIPPED), default=list(SHIPPED), help="spaces to rebuild")
    for space in parser.parse_args().spaces:
        ds = datasets.load(BUILTIN_OF_SPACE[space])
        model = pretrain_on(ds, ds.device_names, seed=0)
        print(model.save(DATA / SHIPPED[space]))


if __name__ == "__main__":
    main()
