"""Out-of-fold errors of a transfer, kept in the transferred model's file for whoever needs its error margin.

A transferred model's residuals on its own samples understate its error on new architectures (its network is
fine-tuned on those very samples), so ``latbench search --confirm`` sizes its margin on out-of-fold pairs: each
fold of the samples predicted by a transfer from the others. Computing them needs the pretrained model, which
the transferred file no longer holds, so ``transfer_and_validate`` (behind ``latbench predictor transfer`` and
the quickstart) records them in the file's ``info``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from latbench.predictor.errors import ModelFileError, PredictorError
from latbench.predictor.stats import folds_of

if TYPE_CHECKING:
    from latbench.predictor.predictor import Predictor

FOLDS = 5
INFO_KEY = "out_of_fold"
"""``Predictor.info`` key of the recorded pairs: ``{"predicted_ms": [...], "measured_ms": [...]}``."""


def possible(samples: int, folds: int = FOLDS) -> bool:
    """Whether ``samples`` split into ``folds`` (at most one per sample) leave every fold's transfer at least
    3 samples to learn from, with 2 folds or more."""
    folds = min(folds, samples)
    return folds >= 2 and samples - -(-samples // folds) >= 3


def out_of_fold(
    pretrained: Predictor,
    device: str,
    archs: Sequence[str],
    latency_ms: Sequence[float] | np.ndarray,
    folds: int = FOLDS,
    method: str | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold (predicted, measured) ms of the transfer samples: each fold predicted by a transfer from the rest.

    raspi4 in help-nb201, 20 samples, 0.9-quantile of over-prediction: 3.4% on the samples themselves, 5.3% out
    of fold, 8.5% over all 15,625. Leave-one-out would cost one transfer per sample; ``folds`` transfers (about
    half a second each for NB201 on one core) come close, and each is fitted on fewer samples than the final
    model, which errs on the side of a wider margin.
    """
    from latbench.predictor.predictor import transfer

    latency = np.asarray(latency_ms, dtype=np.float64)
    n = len(latency)
    if len(archs) != n:
        raise PredictorError(f"{len(archs)} architectures but {n} latencies")
    if not possible(n, folds):
        raise PredictorError(f"cross-validating a transfer needs at least 4 samples and 2 folds, got {n} and {folds}")
    predicted = np.empty(n)
    for held, kept in folds_of(n, folds):
        model = transfer(pretrained, device, [archs[i] for i in kept], latency[kept], method=method, seed=seed)
        predicted[held] = model.predict([archs[i] for i in held])
    return predicted, latency


def transfer_and_validate(
    pretrained: Predictor,
    device: str,
    archs: Sequence[str],
    latency_ms: Sequence[float] | np.ndarray,
    folds: int = FOLDS,
    method: str | None = None,
    seed: int = 0,
    say: Callable[[str], None] | None = None,
) -> Predictor:
    """``transfer``, then its out-of-fold pairs recorded in the model when ``possible`` (``recorded`` tells).

    The default method's model is also calibrated to the device on them (``calibration``); the pairs recorded
    are then the calibrated model's, so its intervals and search's margin measure what it predicts.
    ``say`` hears that the cross-validation starts, as it takes ``folds`` more transfers.
    """
    from latbench.predictor import calibration
    from latbench.predictor.features import codes, cost_feature_names, cost_features
    from latbench.predictor.predictor import DEFAULT_METHOD, transfer

    model = transfer(pretrained, device, archs, latency_ms, method, seed)
    if possible(len(archs), folds):
        if say is not None:
            say(f"cross-validating the transfer ({min(folds, len(archs))} folds) for search's error margin...")
        predicted, measured = out_of_fold(pretrained, device, archs, latency_ms, folds, method, seed)
        if model.method == DEFAULT_METHOD:
            raw = cost_features(model.space, codes(model.space, list(archs)))
            features = calibration.additive_features(cost_feature_names(model.space), raw)
            fitted = calibration.fit(features, measured, predicted, folds)
            model.info[calibration.INFO_KEY] = fitted.to_info()
            predicted = fitted.out_of_fold_ms
        record(model, predicted, measured)
    return model


def record(
    model: Predictor, predicted_ms: Sequence[float] | np.ndarray, measured_ms: Sequence[float] | np.ndarray
) -> None:
    """Keep the pairs in ``model``'s info, saved with it."""
    model.info[INFO_KEY] = {"predicted_ms": [float(v) for v in predicted_ms],
                            "measured_ms": [float(v) for v in measured_ms]}  # fmt: skip


def recorded(model: Predictor) -> tuple[list[float], list[float]] | None:
    """The pairs ``record`` kept in ``model``, or None for a model transferred without them."""
    pairs = model.info.get(INFO_KEY)
    if pairs is None:
        return None
    try:
        predicted, measured = [float(v) for v in pairs["predicted_ms"]], [float(v) for v in pairs["measured_ms"]]
    except (TypeError, KeyError, ValueError):
        raise ModelFileError(f"the model's {INFO_KEY!r} record is malformed") from None
    if len(predicted) != len(measured):
        raise ModelFileError(f"the model's {INFO_KEY!r} record pairs {len(predicted)} predictions with "
                             f"{len(measured)} measurements")  # fmt: skip
    return predicted, measured
