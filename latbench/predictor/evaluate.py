"""The paper's protocol: pretrain on a task's source devices, transfer to each target from a few sampled
measurements, and score the Spearman correlation over every architecture the target measured.

Only the sampled architectures' target latencies reach the predictor; the rest are used for scoring alone.
The figure is averaged over target devices and trials; ``std_srcc`` is the spread of the per-trial means.
Beside the ranking, the absolute accuracy of the milliseconds (``accuracy.accuracy``: median and 90th-percentile
relative error, shares within +/-5% and +/-10%) over the architectures not sampled, and with ``folds`` those of
the calibrated model (``calibration``) and the coverage of the conformal intervals its out-of-fold errors size.

The ``adaptive`` sampler (``latbench.predictor.adaptive``) measures sequentially, the device's dataset values
acting as its measurements; its own accuracy estimate at the end is kept beside the true SRCC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from latbench import datasets
from latbench.errors import MissingDependency
from latbench.predictor import accuracy, adaptive, out_of_fold
from latbench.predictor.errors import PredictorError
from latbench.predictor.features import codes
from latbench.predictor.predictor import (
    DEFAULT_METHOD,
    Predictor,
    TrainingSettings,
    check_method,
    pretrain_on,
    transfer,
)
from latbench.predictor.reference import reference_archs
from latbench.predictor.samplers import EVAL_SAMPLERS, sample_indices
from latbench.progress import Progress, notify
from latbench.ranking import spearman

NO_CHECKS = (
    "with no target the sampler measures its design to the last sample and no random check results, so each estimate "
    "rests on the design's own points and is rough (docs/benchmarks.md, 'Adaptive sampling')"
)
"""The caveat of the adaptive sampler's estimates in an evaluation: a campaign stopping on its target checks its
estimate on random results (the verification batch); a sampler run has no target, so never does."""


@dataclass
class Evaluation:
    task: str
    space: str
    method: str
    samples: int
    trials: int
    sampler: str
    srcc: dict[str, list[float]]
    seconds: dict[str, float] = field(default_factory=dict)
    example: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    """Per device, per trial: ``accuracy.accuracy`` of the predictions, plus ``coverage`` when intervals were made."""
    level: float = accuracy.LEVEL
    estimated: dict[str, list[float]] = field(default_factory=dict)
    """The adaptive sampler's own SRCC estimate at its end, per device, per trial."""
    estimated_std: dict[str, list[float]] = field(default_factory=dict)
    """Each of those estimates' own standard deviation: an estimate shown without it would claim more than it knows."""

    @property
    def estimate_caveat(self) -> str | None:
        """Why the adaptive estimates are rougher than their ± says (``NO_CHECKS``); ``None`` without any."""
        return NO_CHECKS if self.estimated else None

    @property
    def per_device_estimate(self) -> dict[str, tuple[float, float]]:
        """Per device, the adaptive estimate and its standard deviation, each averaged over the trials."""
        return {d: (float(np.mean(v)), float(np.mean(self.estimated_std[d]))) for d, v in self.estimated.items()}

    @property
    def per_device_accuracy(self) -> dict[str, dict[str, float]]:
        """Each accuracy figure averaged over the device's trials."""
        return {d: {k: float(np.mean([t[k] for t in trials])) for k in trials[0]} for d, trials in self.errors.items()}

    @property
    def mean_accuracy(self) -> dict[str, float]:
        """Each accuracy figure averaged over devices (empty before any transfer)."""
        rows = list(self.per_device_accuracy.values())
        return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]} if rows else {}

    @property
    def per_device(self) -> dict[str, float]:
        return {d: float(np.mean(v)) for d, v in self.srcc.items()}

    @property
    def per_device_std(self) -> dict[str, float]:
        return {d: float(np.std(v)) for d, v in self.srcc.items()}

    @property
    def mean_srcc(self) -> float:
        return float(np.mean(list(self.per_device.values())))

    @property
    def std_srcc(self) -> float:
        trial_means = np.mean(np.array(list(self.srcc.values())), axis=0)
        return float(np.std(trial_means))

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` document (issue 5's keys, and the milliseconds' accuracy); ``std_srcc`` is None for one
        trial, whose spread is unknown rather than 0."""
        return {
            "task": self.task,
            "space": self.space,
            "method": self.method,
            "samples": self.samples,
            "trials": self.trials,
            "mean_srcc": self.mean_srcc,
            "std_srcc": self.std_srcc if self.trials > 1 else None,
            "per_device": self.per_device,
            "interval_level": self.level,
            "accuracy": self.mean_accuracy,
            "per_device_accuracy": self.per_device_accuracy,
            **(self._estimates() if self.estimated else {}),
        }

    def _estimates(self) -> dict[str, Any]:
        per_device = self.per_device_estimate
        return {
            "estimated_srcc": {d: e for d, (e, _) in per_device.items()},
            "estimated_srcc_std": {d: sd for d, (_, sd) in per_device.items()},
            "estimate_caveat": self.estimate_caveat,
        }


def evaluate(
    task_name: str | datasets.Task,
    samples: int = 20,
    trials: int = 3,
    method: str = DEFAULT_METHOD,
    sampler: str = "random",
    dataset_names: Sequence[str] | None = None,
    settings: TrainingSettings | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    pretrained: Predictor | None = None,
    folds: int = 0,
    level: float = accuracy.LEVEL,
) -> Evaluation:
    """Run ``task_name`` (``latbench tasks``; or a ``Task``, a generated split's say) with ``samples`` target
    measurements per device, ``trials`` times.

    Pretraining runs once per task (on all source devices, seed ``seed``; or pass ``pretrained``, made by
    ``pretrain_on`` on the task's source devices); trial ``t`` samples with seed ``t``.
    The HELP-style method also measures its 10 reference architectures on the target, as HELP does.
    ``progress`` hears stage ``evaluate``: transfers done of all, with a line on each.
    ``folds`` (2 or more) transfers as ``latbench predictor transfer`` does: each transfer cross-validated
    (``folds`` more transfers, counted in ``transfer_mean``) and calibrated to its device on them; then the
    predictions are the calibrated ones, and the ``level`` intervals' coverage of the measurements is scored.
    """
    import time

    check_method(method)
    accuracy.check_level(level)
    if sampler not in EVAL_SAMPLERS:
        raise PredictorError(f"unknown sampler {sampler!r}; choose one of: {', '.join(EVAL_SAMPLERS)}")
    if isinstance(task_name, datasets.Task):
        task, ds = task_name, datasets.tasks.resolve(task_name, dataset_names)
    else:
        task, ds = datasets.resolve_task(task_name, dataset_names)
    started = time.perf_counter()
    if pretrained is None:
        pretrained = pretrain_on(ds, task.train, method, settings, seed)
    pretrain_s = time.perf_counter() - started
    runs = trials * len(task.test)
    line = f"{task.name}: pretrained {method} on {len(task.train)} source device(s) in {pretrain_s:.1f} s"
    notify(progress, "evaluate", 0, runs, line)
    all_codes = codes(ds.space, ds.archs)
    refs = {a for a in reference_archs(ds.space)} if method == "help" else set()
    result = Evaluation(task.name, ds.space, method, samples, trials, sampler, {}, level=level)
    transfer_s: list[float] = []
    for trial in range(trials):
        for device in task.test:
            latency = ds.vector(device)
            measured = np.flatnonzero(~np.isnan(latency))
            archs = [ds.archs[i] for i in measured]
            if sampler == "adaptive":
                acquisition = adaptive.Acquisition(pretrained, archs, seed=trial)
                run = adaptive.run(acquisition, device, adaptive.table_oracle(archs, latency[measured]), samples)
                pick = np.sort(measured[acquisition.rows(run.archs)])
                result.estimated.setdefault(device, []).append(run.curve[-1].srcc)
                result.estimated_std.setdefault(device, []).append(run.curve[-1].srcc_std)
            else:
                pick = measured[sample_indices(ds.space, archs, samples, sampler, trial, all_codes[measured])]
            if refs:
                ref_rows = [i for i in measured if ds.archs[i] in refs]
                pick = np.array(sorted(set(ref_rows) | set(pick[: max(0, samples - len(ref_rows))])))
            t0 = time.perf_counter()
            picked = [ds.archs[i] for i in pick]
            validate = folds and out_of_fold.possible(len(pick), folds)
            if validate:
                model = out_of_fold.transfer_and_validate(pretrained, device, picked, latency[pick], folds, seed=trial)
            else:
                model = transfer(pretrained, device, picked, latency[pick], seed=trial)
            transfer_s.append(time.perf_counter() - t0)
            predicted = model.predict_codes(all_codes[measured])
            score = float(np.nan_to_num(spearman(predicted, latency[measured]), nan=0.0))
            result.srcc.setdefault(device, []).append(score)
            held = ~np.isin(measured, pick)
            errors = accuracy.accuracy(predicted[held], latency[measured][held])
            if validate:
                low, high = accuracy.interval(predicted[held], model.interval_halfwidth(level))
                errors["coverage"] = accuracy.coverage(low, high, latency[measured][held])
            result.errors.setdefault(device, []).append(errors)
            if trial == trials - 1 and device == task.test[0]:
                result.example = {
                    "device": device,
                    "predicted": predicted,
                    "measured": latency[measured],
                    "srcc": score,
                }
            covered = f", {errors['coverage']:.0%} in the {level:.0%} interval" if "coverage" in errors else ""
            line = (
                f"{task.name} trial {trial + 1}/{trials} {device}: SRCC {score:.3f}, "
                f"{errors['within_10']:.0%} within ±10%{covered}"
            )
            notify(progress, "evaluate", len(transfer_s), runs, line)
    result.seconds = {
        "pretrain": pretrain_s,
        "transfer_mean": float(np.mean(transfer_s)),
        "total": time.perf_counter() - started,
    }
    return result


def plot_example(result: Evaluation, path: str | Path) -> Path:
    """Predicted against measured latency on one target device (the first, last trial), log-log."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependency("matplotlib", "datasets", "plotting predictions") from None
    ex = result.example
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    ax.scatter(ex["measured"], ex["predicted"], s=3, alpha=0.4)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"measured latency on {ex['device']} (ms)")
    ax.set_ylabel("predicted latency (ms)")
    ax.set_title(f"{result.task} {result.method}, {result.samples} samples: SRCC {ex['srcc']:.3f}")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, format="png", dpi=120)
    return path
