"""``Predictor``: pretrain on source devices, transfer to a target from a few measurements, predict, save, load.

A model file is ``torch.save`` of plain tensors and a JSON string of metadata, read back with
``weights_only=True`` (no pickled code runs on load).
"""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import latbench
from latbench import datasets
from latbench.errors import LatbenchError
from latbench.predictor import accuracy, calibration, members, out_of_fold, setups
from latbench.predictor.errors import ModelFileError, PredictorError, UnknownDevice
from latbench.predictor.features import codes, cost_feature_names, cost_features, graph_batch
from latbench.predictor.loss import minmax
from latbench.predictor.methods import DEFAULT_METHOD, METHODS
from latbench.predictor.reference import reference_archs
from latbench.predictor.sources import SourceTable
from latbench.predictor.stats import zscore_stats
from latbench.ranking import spearman
from latbench.spaces import get_space

FORMAT = "latbench-predictor"
VERSION = 1
NETWORK_OF = {"latbench": "nasflat", "nasflat": "nasflat", "help": "help", "multipredict": "multipredict"}
"""Method -> the network it pretrains; the other methods are fitted on the target samples alone."""
ENSEMBLE = ["network", "ridge", "nnls", "cost-ridge", "cost-nnls", "ridge-all", "flops", "cost-top"]
MIN_SAMPLES = 3
TRANSFER_LR = {"nb201": 3e-3}
"""Transfer learning rate by space where it differs from the default 1e-3 (tuned on the HELP tasks)."""


@dataclass(frozen=True)
class TrainingSettings:
    """Pretraining and fine-tuning hyper-parameters (the paper's, scaled to a CPU)."""

    samples_per_device: int = 300
    epochs: int = 15
    batch_size: int = 128
    lr: float = 1e-3
    transfer_epochs: int = 40
    transfer_batch_size: int = 16
    transfer_lr: float | None = None
    width: int = 32
    head_hidden: int = 128

    def lr_for_transfer(self, space: str) -> float:
        return self.transfer_lr or TRANSFER_LR.get(get_space(space).name, 1e-3)


ECHO_KEY = "samples_echo_sources"
"""``info`` key: the source devices whose latencies the transfer's samples are (``Predictor.caveat``)."""
ECHO_RTOL = 1e-4
"""Samples this close to a source's values on every architecture are that source's table (stored as float32),
not another device's measurements."""


@dataclass
class Predictor:
    """A latency predictor of one search space: pretrained on ``source.devices``, transferred to ``target``."""

    space: str
    method: str
    source: SourceTable
    cost_stats: tuple[np.ndarray, np.ndarray]
    source_stats: tuple[np.ndarray, np.ndarray]
    settings: TrainingSettings = field(default_factory=TrainingSettings)
    network: Any = None
    network_config: dict[str, Any] | None = None
    target: str | None = None
    target_row: int | None = None
    head: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def devices(self) -> tuple[str, ...]:
        return self.source.devices

    # --- inputs -------------------------------------------------------------------------------------------
    def _supplementary(self, arch_codes: np.ndarray, raw: np.ndarray | None = None) -> np.ndarray:
        """The network's supplementary input: z-scored cost features (``raw``: already computed ones)."""
        raw = cost_features(self.space, arch_codes) if raw is None else raw
        mean, std = self.cost_stats
        return ((raw - mean) / std).astype(np.float32)

    def inputs(
        self, arch_codes: np.ndarray, network: np.ndarray | None = None, raw: np.ndarray | None = None
    ) -> members.Inputs:
        raw = cost_features(self.space, arch_codes) if raw is None else raw
        log_sources = self.source.lookup(arch_codes)
        mean, std = self.source_stats
        totals = raw.copy()
        logged = [i for i, name in enumerate(cost_feature_names(self.space)) if name.startswith("log_")]
        totals[:, logged] = np.exp(raw[:, logged])
        return members.Inputs(
            costs=(raw - self.cost_stats[0]) / self.cost_stats[1],
            macs=np.exp(raw[:, 0]) / 1e6,
            sources=(log_sources - mean) / std,
            sources_ms=np.exp(log_sources),
            network=network,
            totals=totals,
        )

    def network_scores(self, arch_codes: np.ndarray, device_row: int, raw: np.ndarray | None = None) -> np.ndarray:
        from latbench.predictor.train import scores

        batch = graph_batch(self.space, arch_codes)
        with _threads():
            return scores(self.network, batch.ops, batch.adjacency, self._supplementary(arch_codes, raw), device_row)

    # --- prediction ---------------------------------------------------------------------------------------
    def predict(self, archs: Sequence[str]) -> np.ndarray:
        """Predicted latency in ms on the target device for each of ``archs`` (canonical strings of the space)."""
        return self.predict_codes(codes(self.space, list(archs)))

    def predict_interval(
        self, archs: Sequence[str], level: float = accuracy.LEVEL
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(ms, low, high)``: each prediction with a ``level`` interval, conformal on the transfer's out-of-fold
        errors (``transfer_and_validate`` records them; a model transferred without them has none)."""
        ms = self.predict(archs)
        low, high = accuracy.interval(ms, self.interval_halfwidth(level))
        return ms, low, high

    def interval_halfwidth(self, level: float = accuracy.LEVEL) -> float:
        """The log-space half-width of this model's ``level`` intervals (inf with too few out-of-fold pairs)."""
        pairs = out_of_fold.recorded(self)
        if pairs is None:
            raise PredictorError(
                f"the model for {self.target or 'no device'} has no out-of-fold errors to size intervals from; "
                "transfer it with `latbench predictor transfer` (--folds 2 or more, each fold leaving 3 samples)"
            )
        return accuracy.log_halfwidth(*pairs, level=level)

    @property
    def caveat(self) -> str | None:
        """Why this model's figures are not a transfer's, if they are not: its samples are a source device's own
        latencies (that device's whole table is among its inputs, so it predicts the target from itself)."""
        echoed = self.info.get(ECHO_KEY)
        if not echoed:
            return None
        return (
            f"the samples of {self.target} are source device {echoed[0]}'s own latencies, and that device's whole "
            "table is among the model's inputs: its predictions and errors are that table read back, not a "
            "transfer's; pretrain without it (latbench predictor pretrain --devices ...) to judge a transfer"
        )

    @property
    def has_intervals(self) -> bool:
        return out_of_fold.recorded(self) is not None

    @property
    def calibrated(self) -> bool:
        """Whether a per-device calibration (``calibration``) adjusts this model's predictions."""
        return calibration.INFO_KEY in self.info

    def predict_codes(self, arch_codes: np.ndarray, calibrated: bool = True) -> np.ndarray:
        """Predicted ms of genome rows; ``calibrated=False``: the ranking model's own output, without the
        device's calibration (what the calibration was chosen against)."""
        if self.target is None:
            raise PredictorError(
                f"this model is pretrained on {len(self.devices)} source device(s) but not transferred to a target "
                "device; transfer it first (`latbench predictor transfer`)"
            )
        raw = cost_features(self.space, arch_codes)
        network = None
        if self.network is not None and self.target_row is not None:
            network = self.network_scores(arch_codes, self.target_row, raw)
        x = self.inputs(arch_codes, network, raw)
        if self.method == DEFAULT_METHOD:
            ms = np.exp(members.predict_ensemble(x, self.head))
            if calibrated and self.calibrated:
                weight, additive = calibration.from_info(self.info[calibration.INFO_KEY])
                features = calibration.additive_features(cost_feature_names(self.space), raw)
                ms = calibration.blend(weight, ms, additive.predict(features))
            return ms
        member = "network" if self.method in NETWORK_OF else self.method
        if members.MEMBERS[member][2] and not x.has_sources:
            raise PredictorError(
                f"method {self.method!r} reads the source devices' latencies, and no source device measured "
                f"{int((~x.known).sum())} of these architectures; use the default method"
            )
        return np.exp(members.predict_member(member, x, self.head))

    # --- files --------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        import torch

        source_meta, tensors = self.source.to_state()
        if self.network is not None:
            tensors.update({f"network.{k}": v.detach().clone() for k, v in self.network.state_dict().items()})
        meta = {
            "space": self.space,
            "method": self.method,
            "latbench_version": latbench.__version__,
            "source": source_meta,
            "cost_features": cost_feature_names(self.space),
            "cost_stats": [s.tolist() for s in self.cost_stats],
            "source_stats": [s.tolist() for s in self.source_stats],
            "settings": self.settings.__dict__,
            "network_config": self.network_config,
            "target": self.target,
            "target_row": self.target_row,
            "head": self.head,
            "info": self.info,
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"format": FORMAT, "version": VERSION, "meta": json.dumps(meta), "tensors": tensors}, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Predictor:
        """Read a model file; refuses anything that is not a latbench predictor file without running its code."""
        import torch

        path = Path(path)
        if not path.is_file():
            raise ModelFileError(f"no predictor file at {path}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                blob = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ModelFileError(f"{path} is not a latbench predictor file ({type(exc).__name__})") from None
        if not isinstance(blob, dict) or blob.get("format") != FORMAT:
            raise ModelFileError(f"{path} is not a latbench predictor file")
        if blob.get("version") != VERSION:
            raise ModelFileError(
                f"{path} is predictor format version {blob.get('version')}; this latbench reads {VERSION}"
            )
        try:
            meta = json.loads(blob["meta"])
            tensors = blob["tensors"]
            predictor = cls(
                space=get_space(meta["space"]).name,
                method=meta["method"],
                source=SourceTable.from_state(meta["source"], tensors),
                cost_stats=(np.asarray(meta["cost_stats"][0]), np.asarray(meta["cost_stats"][1])),
                source_stats=(np.asarray(meta["source_stats"][0]), np.asarray(meta["source_stats"][1])),
                settings=TrainingSettings(**meta["settings"]),
                network_config=meta["network_config"],
                target=meta["target"],
                target_row=meta["target_row"],
                head=meta["head"],
                info=meta["info"],
            )
            if predictor.network_config is not None:
                predictor.network = build_network(meta["method"], predictor.network_config)
                state = {k[len("network.") :]: v for k, v in tensors.items() if k.startswith("network.")}
                predictor.network.load_state_dict(state)
                predictor.network.eval()
        except LatbenchError:
            raise
        except Exception as exc:
            raise ModelFileError(f"{path} is a damaged predictor file ({type(exc).__name__}: {exc})") from None
        return predictor


def build_network(method: str, config: dict[str, Any]) -> Any:
    from latbench.predictor.mlp import EncodingMlp, MlpConfig
    from latbench.predictor.model import Nasflat, NasflatConfig

    if NETWORK_OF[method] == "nasflat":
        return Nasflat(NasflatConfig(**config))
    return EncodingMlp(MlpConfig(**config))


def check_method(method: str) -> str:
    if method not in METHODS:
        raise PredictorError(f"unknown method {method!r}; choose one of: {', '.join(METHODS)}")
    return method


# --- pretraining ----------------------------------------------------------------------------------------------
def find_devices(space: str, devices: Sequence[str], dataset_names: Sequence[str] | None = None) -> datasets.Dataset:
    """One dataset view of ``devices`` (in order), each taken from the first dataset of ``space`` holding it."""
    space = get_space(space).name
    if dataset_names:
        spaces = {summary.name: summary.space for summary in datasets.list_datasets()}
        other = [f"{name} ({spaces[name]})" for name in dataset_names if spaces.get(name, space) != space]
        if other:
            raise PredictorError(f"a {space} predictor cannot learn from datasets of another space: {', '.join(other)}")
    found: dict[str, str] = {}
    for summary in datasets.tasks.candidates(space, dataset_names):
        for device in summary.devices:
            found.setdefault(device, summary.name)
    missing = [d for d in devices if d not in found]
    if missing:
        known = ", ".join(sorted(found)) or "none"
        raise UnknownDevice(f"no {space} dataset holds device(s) {', '.join(missing)}; known devices: {known}")
    if len(set(devices)) != len(devices):
        raise PredictorError("a source device is named twice")
    by_source: dict[str, list[str]] = {}
    for d in devices:
        by_source.setdefault(found[d], []).append(d)
    parts = [datasets.load(name).select(ds_devices) for name, ds_devices in by_source.items()]
    if len(parts) == 1 and parts[0].builtin:
        return parts[0].select(list(devices))
    return datasets.combine(parts, name="sources").select(list(devices))


def pretrain(
    space: str,
    devices: Sequence[str],
    dataset_names: Sequence[str] | None = None,
    method: str = DEFAULT_METHOD,
    settings: TrainingSettings | None = None,
    seed: int = 0,
) -> Predictor:
    """Pretrain on source ``devices`` (found in ``dataset_names``, else the built-ins then the registry)."""
    if not devices:
        raise PredictorError("pretraining needs at least one source device")
    return pretrain_on(find_devices(space, devices, dataset_names), list(devices), method, settings, seed)


def pretrain_on(
    ds: datasets.Dataset,
    devices: Sequence[str],
    method: str = DEFAULT_METHOD,
    settings: TrainingSettings | None = None,
    seed: int = 0,
) -> Predictor:
    """Pretrain on ``devices`` of the dataset ``ds`` you hold (a task view, say)."""
    check_method(method)
    settings = settings or TrainingSettings()
    unknown = [d for d in devices if d not in ds.device_names]
    if unknown:
        raise UnknownDevice(f"dataset {ds.name!r} has no device(s) {', '.join(unknown)}")
    source = SourceTable.from_dataset(ds, tuple(devices))
    arch_codes = source.arch_codes
    raw = cost_features(ds.space, arch_codes)
    finite = np.where(np.isfinite(source.latency), source.latency, np.nan)
    mean = np.nanmean(finite, axis=0) if len(finite) else np.zeros(len(devices))
    std = np.nanstd(finite, axis=0)
    predictor = Predictor(
        space=ds.space,
        method=method,
        source=source,
        cost_stats=zscore_stats(raw),
        source_stats=(mean, np.where(std > 1e-12, std, 1.0)),
        settings=settings,
        info={"pretrained_on": list(devices), "dataset": ds.name, "seed": seed},
    )
    if method in NETWORK_OF:
        _pretrain_network(predictor, ds, list(devices), seed)
    return predictor


def _pretrain_network(predictor: Predictor, ds: datasets.Dataset, devices: list[str], seed: int) -> None:
    import torch

    from latbench.predictor.train import device_samples, fit

    s = predictor.settings
    arch_codes = predictor.source.arch_codes
    batch = graph_batch(ds.space, arch_codes)
    supplementary = predictor._supplementary(arch_codes)
    kind = NETWORK_OF[predictor.method]
    vectors = None
    if kind == "help":
        filled = np.exp(predictor.source.lookup(arch_codes))  # a source's holes imputed (``sources.impute``)
        vectors = np.stack([_help_vector(ds.space, ds.archs, filled[:, row]) for row in range(len(devices))])
    config = _network_config(kind, ds.space, len(devices), supplementary.shape[1], batch.ops.shape[1], s)
    with _threads():
        torch.manual_seed(seed)
        network = build_network(predictor.method, config)
        if vectors is not None:
            network.device_vectors = torch.from_numpy(vectors.astype(np.float32))
        rng = np.random.default_rng(seed)
        parts = []
        for row, device in enumerate(devices):
            measured = np.flatnonzero(~np.isnan(ds.vector(device)))
            if len(measured) < 2:
                raise PredictorError(f"source device {device!r} measured fewer than 2 architectures")
            pick = rng.choice(measured, size=min(s.samples_per_device, len(measured)), replace=False)
            parts.append(device_samples(batch.ops, supplementary, ds.vector(device), row, pick))
        fit(network, parts, batch.adjacency, s.epochs, s.lr, s.batch_size, seed)
    predictor.network = network
    predictor.network_config = config


def _network_config(kind: str, space: str, devices: int, supplementary: int, nodes: int, s: TrainingSettings) -> dict:
    vocabulary = len(get_space(space).vocabulary)
    if kind == "nasflat":
        return {
            "vocabulary_size": vocabulary,
            "devices": devices,
            "supplementary": supplementary,
            "width": s.width,
            "head_hidden": s.head_hidden,
        }
    return {
        "nodes": nodes,
        "vocabulary_size": vocabulary,
        "devices": devices,
        "supplementary": supplementary,
        "device_dim": len(reference_archs(space)) if kind == "help" else 8,
        "fixed_devices": kind == "help",
    }


def _help_vector(space: str, archs: Sequence[str], latency: np.ndarray) -> np.ndarray:
    """A device's min-max latencies on the reference architectures (``latency`` aligned with ``archs``)."""
    position = {a: i for i, a in enumerate(archs)}
    refs = reference_archs(space)
    missing = [a for a in refs if a not in position or np.isnan(latency[position[a]])]
    if missing:
        raise PredictorError(
            f"the HELP-style method needs the device's latency on its {len(refs)} reference architectures; "
            f"missing {len(missing)}: {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}"
        )
    return minmax(np.array([latency[position[a]] for a in refs]))


class _threads:
    """One torch thread while training: on a shared 2-core machine extra threads only spin (20x slower)."""

    def __enter__(self) -> None:
        import torch

        self.before = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc: object) -> None:
        import torch

        torch.set_num_threads(self.before)


# --- transfer -------------------------------------------------------------------------------------------------
def transfer(
    pretrained: Predictor,
    device: str,
    archs: Sequence[str],
    latency_ms: Sequence[float] | np.ndarray,
    method: str | None = None,
    seed: int = 0,
) -> Predictor:
    """A predictor for ``device`` from its measured ``latency_ms`` on ``archs`` (the pretrained model is kept).

    The new device's embedding starts as a copy of the source device whose latencies (as the pretrained network
    predicts them) correlate best with the measured samples; then the whole network is fine-tuned on them.
    """
    method = check_method(method or pretrained.method)
    if method in NETWORK_OF and NETWORK_OF[method] != NETWORK_OF.get(pretrained.method):
        raise PredictorError(
            f"method {method!r} needs a network pretrained for it; this model was pretrained for {pretrained.method!r}"
        )
    latency = np.asarray(latency_ms, dtype=np.float64)
    arch_codes = codes(pretrained.space, list(archs))
    if len(arch_codes) != len(latency):
        raise PredictorError(f"{len(arch_codes)} architectures but {len(latency)} latencies")
    if len(arch_codes) < MIN_SAMPLES:
        raise PredictorError(f"transfer needs at least {MIN_SAMPLES} measured architectures, got {len(arch_codes)}")
    if not np.all(np.isfinite(latency)) or np.any(latency <= 0):
        raise PredictorError("measured latencies must be finite and positive")
    if len({row.tobytes() for row in arch_codes}) != len(arch_codes):
        raise PredictorError("an architecture is given twice; give each measured architecture once")
    out = copy.copy(pretrained)
    out.method, out.target, out.target_row = method, device, None
    # Another transfer's out-of-fold errors, calibration, caveat and measurement setup are not this one's.
    own = (out_of_fold.INFO_KEY, calibration.INFO_KEY, ECHO_KEY, setups.INFO_KEY, setups.MACHINE_KEY)
    inherited = {k: v for k, v in pretrained.info.items() if k not in own}
    out.info = {**inherited, "target": device, "samples": len(latency), "transfer_seed": seed}
    network = None
    if method in NETWORK_OF:
        out.network = copy.deepcopy(pretrained.network)
        out.target_row = _transfer_network(out, list(archs), arch_codes, latency, seed)
        network = out.network_scores(arch_codes, out.target_row)
    else:
        out.network, out.network_config = None, None
    x = out.inputs(arch_codes, network)
    y = np.log(latency)
    note_echo(out, x, latency)
    if method == DEFAULT_METHOD:
        names = [m for m in ENSEMBLE if x.has_sources or not members.MEMBERS[m][2]]
        out.head = members.fit_ensemble(x, y, names)
    else:
        member = "network" if method in NETWORK_OF else method
        if members.MEMBERS[member][2] and not x.has_sources:
            raise PredictorError(
                f"method {method!r} needs source-device latencies of the measured architectures, and no source "
                f"device measured {int((~x.known).sum())} of them; use the default method"
            )
        out.head = members.fit_member(member, x, y)
    return out


def note_echo(model: Predictor, x: members.Inputs, latency_ms: np.ndarray) -> None:
    """Record in ``model`` (``ECHO_KEY``, read by ``Predictor.caveat``) the source devices whose latencies at the
    samples' inputs ``x`` are the samples ``latency_ms``: a transfer to a device read back from its own table."""
    echoed = [
        d
        for d, column in zip(model.devices, x.sources_ms.T, strict=True)
        if np.allclose(column, latency_ms, rtol=ECHO_RTOL)
    ]
    if echoed:
        model.info[ECHO_KEY] = echoed


def _transfer_network(p: Predictor, archs: list[str], arch_codes: np.ndarray, latency: np.ndarray, seed: int) -> int:
    import torch

    from latbench.predictor.train import device_samples, fit

    s = p.settings
    with _threads():
        if NETWORK_OF[p.method] == "help":
            vector = torch.from_numpy(_help_vector(p.space, archs, latency).astype(np.float32))
            row = p.network.add_device(0, vector)
        else:
            on_sources = [p.network_scores(arch_codes, d) for d in range(len(p.devices))]
            correlation = np.nan_to_num([spearman(v, latency) for v in on_sources], nan=0.0)
            row = p.network.add_device(int(np.argmax(correlation)))
            p.info["initialised_from"] = p.devices[int(np.argmax(correlation))]
        p.network_config = {**(p.network_config or {}), "devices": row + 1}
        batch = graph_batch(p.space, arch_codes)
        part = device_samples(batch.ops, p._supplementary(arch_codes), latency, row, np.arange(len(latency)))
        fit(
            p.network,
            [part],
            batch.adjacency,
            s.transfer_epochs,
            s.lr_for_transfer(p.space),
            s.transfer_batch_size,
            seed,
        )
    return row
