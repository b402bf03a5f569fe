"""Pretrain, transfer, predict, save and load on the built-in data; clear errors for what cannot be done."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from latbench import datasets
from latbench.errors import InvalidArchitecture, UnknownSpace
from latbench.predictor import (
    ModelFileError,
    Predictor,
    PredictorError,
    TrainingSettings,
    UnknownDevice,
    load_pretrained,
    out_of_fold,
    pretrain,
    transfer,
    transfer_and_validate,
)
from latbench.predictor.features import codes, cost_features
from latbench.ranking import spearman

SMALL = TrainingSettings(samples_per_device=100, epochs=3, transfer_epochs=10)
SOURCES = ["2080ti_1", "titan_rtx_1", "raspi4"]
TARGET = "1080ti_1"


@pytest.fixture(scope="module")
def fbnet() -> datasets.Dataset:
    return datasets.load("help-fbnet")


@pytest.fixture(scope="module")
def pretrained() -> Predictor:
    return pretrain("fbnet", SOURCES, settings=SMALL, seed=0)


def _samples(ds: datasets.Dataset, device: str, n: int = 20, seed: int = 0) -> tuple[list[str], np.ndarray]:
    pick = np.random.default_rng(seed).choice(len(ds.archs), n, replace=False)
    return [ds.archs[i] for i in pick], ds.vector(device)[pick]


@pytest.mark.parametrize("method", ["latbench", "nasflat"])
@pytest.mark.slow
def test_transfer_to_a_held_out_device_beats_flops(pretrained: Predictor, fbnet: datasets.Dataset, method: str) -> None:
    archs, latency = _samples(fbnet, TARGET)
    model = transfer(pretrained, TARGET, archs, latency, method=method)
    measured = fbnet.vector(TARGET)
    flops = spearman(cost_features("fbnet", codes("fbnet", list(fbnet.archs)))[:, 0], measured)
    srcc = spearman(model.predict(list(fbnet.archs)), measured)
    assert srcc > flops + 0.2, (srcc, flops)
    assert model.info["initialised_from"] in SOURCES


@pytest.mark.slow
def test_transfer_and_validate_records_out_of_fold_errors_where_the_samples_allow(
    pretrained: Predictor, fbnet: datasets.Dataset
) -> None:
    archs, latency = _samples(fbnet, TARGET, n=10)
    heard: list[str] = []
    model = transfer_and_validate(pretrained, TARGET, archs, latency, folds=3, say=heard.append)
    assert heard == ["cross-validating the transfer (3 folds) for search's error margin..."]
    predicted, measured = out_of_fold.recorded(model)  # type: ignore[misc]
    assert measured == latency.tolist()
    assert np.all(np.isfinite(predicted)) and min(predicted) > 0 and predicted != model.predict(archs).tolist()
    plain = transfer(pretrained, TARGET, archs, latency).predict(archs)
    assert model.calibrated and np.allclose(model.predict_codes(codes(fbnet.space, archs), calibrated=False), plain)
    again = transfer_and_validate(model, TARGET, archs[:4], latency[:4], folds=2, say=heard.append)
    assert out_of_fold.recorded(again) is None and len(heard) == 1  # 4 samples leave a fold 2 to learn from


def test_save_and_load_give_identical_predictions(
    pretrained: Predictor, fbnet: datasets.Dataset, tmp_path: Path
) -> None:
    archs, latency = _samples(fbnet, TARGET)
    model = transfer(pretrained, TARGET, archs, latency)
    path = model.save(tmp_path / "m.pt")
    again = Predictor.load(path)
    probe = list(fbnet.archs[:500])
    assert np.array_equal(model.predict(probe), again.predict(probe))
    assert again.target == TARGET and again.devices == tuple(SOURCES)
    assert Predictor.load(pretrained.save(tmp_path / "pre.pt")).devices == tuple(SOURCES)


def test_same_seed_same_predictor(pretrained: Predictor, fbnet: datasets.Dataset) -> None:
    archs, latency = _samples(fbnet, TARGET)
    a = transfer(pretrained, TARGET, archs, latency, method="nasflat", seed=3).predict(archs)
    b = transfer(pretrained, TARGET, archs, latency, method="nasflat", seed=3).predict(archs)
    assert np.array_equal(a, b)


@pytest.mark.slow
def test_shipped_nb201_model_transfers_to_a_new_device_from_20_samples() -> None:
    """The new device is this repository's int8 CPU, which no source device is (FLOPs rank it near chance)."""
    pre = load_pretrained("nb201")
    assert len(pre.devices) == len(datasets.load("help-nb201").devices)
    ds = datasets.load("here-nb201-int8")
    measured = ds.vector("cpu_ort_int8")
    archs = [ds.archs[i] for i in np.flatnonzero(~np.isnan(measured))]
    measured = measured[~np.isnan(measured)]
    pick = np.random.default_rng(0).choice(len(archs), 20, replace=False)
    model = transfer(pre, "my-board", [archs[i] for i in pick], measured[pick])
    assert model.caveat is None
    flops = spearman(cost_features("nb201", codes("nb201", archs))[:, 0], measured)
    assert spearman(model.predict(archs), measured) > flops + 0.2


def test_a_transfer_whose_samples_are_a_source_devices_own_table_says_so(pretrained: Predictor) -> None:
    """Transferring ``shipped:nb201`` to help-nb201's pixel2 reads pixel2's own column back: near-perfect figures
    that are no transfer's. A device that merely resembles a source (its latencies 1% slower) is no echo."""
    fbnet = datasets.load("help-fbnet")
    archs, latency = _samples(fbnet, "raspi4")
    echo = transfer(pretrained, "raspi4", archs, latency, method="ridge")
    assert echo.caveat is not None and "source device raspi4's own latencies" in echo.caveat
    assert echo.info["samples_echo_sources"] == ["raspi4"]
    assert transfer(pretrained, "my-pi", archs, latency * 1.01, method="ridge").caveat is None
    assert transfer(echo, "my-pi", archs, latency * 1.01, method="ridge").caveat is None  # not inherited
    saved = transfer_and_validate(pretrained, "raspi4", archs, latency, folds=2, method="ridge")
    assert saved.caveat == echo.caveat


def test_baselines_fit_without_a_network(pretrained: Predictor, fbnet: datasets.Dataset) -> None:
    archs, latency = _samples(fbnet, "fpga")
    for method in ("flops", "params", "ridge", "nnls", "cost-ridge", "cost-top"):
        model = transfer(pretrained, "fpga", archs, latency, method=method)
        assert model.network is None
        assert np.all(model.predict(archs[:5]) > 0)


def test_unknown_devices_spaces_and_methods_are_clear_errors(pretrained: Predictor) -> None:
    with pytest.raises(UnknownDevice, match=r"no fbnet dataset holds device.*nope"):
        pretrain("fbnet", ["nope"], settings=SMALL)
    with pytest.raises(UnknownSpace, match="unknown search space"):
        pretrain("resnet", ["1080ti_1"])
    with pytest.raises(PredictorError, match="unknown method"):
        pretrain("fbnet", SOURCES, method="magic")
    with pytest.raises(PredictorError, match="not transferred"):
        pretrained.predict(["-".join(["skip"] * 22)])
    with pytest.raises(InvalidArchitecture):
        transfer(pretrained, "x", ["not-an-arch"] * 3, [1.0, 2.0, 3.0])
    archs = ["-".join([b] * 22) for b in ("skip", "k3_e1", "k3_e3")]
    with pytest.raises(PredictorError, match="at least 3"):
        transfer(pretrained, "x", archs[:2], [1.0, 2.0])
    with pytest.raises(PredictorError, match="finite and positive"):
        transfer(pretrained, "x", archs, [1.0, -2.0, 3.0])
    with pytest.raises(PredictorError, match="given twice"):
        transfer(pretrained, "x", [archs[0]] * 3, [1.0, 2.0, 3.0])


def test_bad_model_files_are_refused_without_running_code(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="no predictor file"):
        Predictor.load(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="not a latbench predictor"):
        Predictor.load(garbage)
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (Path.touch, (str(marker),))  # type: ignore[return-value]

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"format": "latbench-predictor", "x": Exploit()}))
    with pytest.raises(ModelFileError):
        Predictor.load(evil)
    assert not marker.exists()
