"""Regenerate the pretrained NB201 predictor shipped in latbench/predictor/data/pretrained-nb201.pt.

    python scripts/build_pretrained_predictor.py

Pretrains the default method on every device of the built-in ``help-nb201`` dataset (seed 0). The file keeps
the network and statistics only; the source latencies are the built-in dataset's, referenced by content hash.
"""

from __future__ import annotations

from pathlib import Path

from latbench import datasets
from latbench.predictor import pretrain_on

OUT = Path(__file__).resolve().parent.parent / "latbench" / "predictor" / "data" / "pretrained-nb201.pt"


def main() -> None:
    ds = datasets.load("help-nb201")
    model = pretrain_on(ds, ds.device_names, seed=0)
    print(model.save(OUT))


if __name__ == "__main__":
    main()
