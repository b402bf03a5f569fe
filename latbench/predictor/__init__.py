"""Latency predictors: pretrain on source devices, transfer to a new device from ~20 measurements, predict.

```python
from latbench import predictor

pre = predictor.pretrain("nb201", ["1080ti_1", "pixel3", "raspi4"])      # or predictor.load_pretrained("nb201")
model = predictor.transfer(pre, "my-pi", archs, latency_ms)               # ~20 measured architectures
model.save("my-pi.pt")
predictor.Predictor.load("my-pi.pt").predict(archs)                       # ms, one per architecture
result = predictor.evaluate("ND", samples=20, trials=3)                   # the paper's protocol
predictor.suggest("nb201", 20)                                            # what to measure on a new device
```

The default method (``latbench``) is an ensemble of the NASFLAT graph network and fits on the source devices'
latencies and cost features, weighted by their leave-one-out Spearman correlation on the target's samples.
Training needs torch (``pip install 'latbench[predictor]'``).
"""

from __future__ import annotations

from latbench.predictor.errors import ModelFileError, PredictorError, UnknownDevice
from latbench.predictor.evaluate import Evaluation, evaluate, plot_example
from latbench.predictor.paper import BAR_20, PAPER_20
from latbench.predictor.predictor import (
    DEFAULT_METHOD,
    METHODS,
    Predictor,
    TrainingSettings,
    pretrain,
    pretrain_on,
    transfer,
)
from latbench.predictor.pretrained import load_pretrained, pretrained_path
from latbench.predictor.samplers import SAMPLERS, suggest

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
]
