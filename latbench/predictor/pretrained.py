"""The pretrained predictors shipped with latbench (NB201 and OFA MobileNetV3, each on every device of its built-in
HELP dataset), and where they live.

``scripts/build_pretrained_predictor.py`` regenerates them; their source latencies are the built-in datasets',
referenced by content hash, so a file holds only the network and the fitted statistics.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from latbench.predictor.errors import ModelFileError
from latbench.predictor.predictor import Predictor
from latbench.spaces import get_space

SHIPPED = {"nb201": "data/pretrained-nb201.pt", "ofa-mbv3": "data/pretrained-ofa-mbv3.pt"}


def pretrained_path(space: str) -> Path:
    space = get_space(space).name
    if space not in SHIPPED:
        raise ModelFileError(
            f"latbench ships a pretrained predictor for {', '.join(SHIPPED)} only; pretrain one for {space} with "
            "`latbench predictor pretrain`"
        )
    return Path(str(resources.files("latbench.predictor").joinpath(SHIPPED[space])))


def load_pretrained(space: str = "nb201") -> Predictor:
    return Predictor.load(pretrained_path(space))
