"""Latency predictors: pretrain on source devices, transfer to a new device from ~20 measurements, predict.

```python
from latbench import predictor

pre = predictor.pretrain("nb201", ["1080ti_1", "pixel3", "raspi4"])      # or predictor.load_pretrained("nb201")
model = predictor.transfer(pre, "my-pi", archs, latency_ms)               # ~20 measured architectures
model = predictor.transfer_and_validate(pre, "my-pi", archs, latency_ms)  # + out-of-fold errors for search
model.save("my-pi.pt")
predictor.Predictor.load("my-pi.pt").predict(archs)                       # ms, one per architecture
ms, low, high = model.predict_interval(archs, level=0.9)                  # conformal, from the out-of-fold errors
result = predictor.evaluate("ND", samples=20, trials=3)                   # the paper's protocol
predictor.suggest("nb201", 20)                                            # what to measure on a new device
```

The default method (``latbench``) is an ensemble of the NASFLAT graph network and fits on the source devices'
latencies and cost features, weighted by their leave-one-out error on the target's samples.
Training needs torch (``pip install 'latbench[predictor]'``).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from latbench.predictor.errors import ModelFileError, PredictorError, UnknownDevice

# The public names resolve on first use, so importing a light submodule (the encodings tables, a CLI module
# listing commands) does not load torch and the training stack.
_LAZY = {
    "Evaluation": "evaluate",
    "evaluate": "evaluate",
    "plot_example": "evaluate",
    "BAR_20": "paper",
    "PAPER_20": "paper",
    "DEFAULT_METHOD": "methods",
    "METHODS": "methods",
    "Predictor": "predictor",
    "TrainingSettings": "predictor",
    "pretrain": "predictor",
    "pretrain_on": "predictor",
    "transfer": "predictor",
    "transfer_and_validate": "out_of_fold",
    "load_pretrained": "pretrained",
    "pretrained_path": "pretrained",
    "SAMPLERS": "samplers",
    "suggest": "samplers",
}

if TYPE_CHECKING:
    from latbench.predictor.evaluate import Evaluation, evaluate, plot_example
    from latbench.predictor.methods import DEFAULT_METHOD, METHODS
    from latbench.predictor.out_of_fold import transfer_and_validate
    from latbench.predictor.paper import BAR_20, PAPER_20
    from latbench.predictor.predictor import Predictor, TrainingSettings, pretrain, pretrain_on, transfer
    from latbench.predictor.pretrained import load_pretrained, pretrained_path
    from latbench.predictor.samplers import SAMPLERS, suggest


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(f"latbench.predictor.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'latbench.predictor' has no attribute {name!r}")


__all__ = [
    "BAR_20",
    "DEFAULT_METHOD",
    "METHODS",
    "PAPER_20",
    "SAMPLERS",
    "Evaluation",
    "ModelFileError",
    "Predictor",
    "PredictorError",
    "TrainingSettings",
    "UnknownDevice",
    "evaluate",
    "load_pretrained",
    "plot_example",
    "pretrain",
    "pretrain_on",
    "pretrained_path",
    "suggest",
    "transfer",
    "transfer_and_validate",
]
