"""The predictor on OFA MobileNetV3 (46 genes, 16 cost features): pretrain on task OA's source GPUs, transfer to
its held-out Titan RTX from a few samples, and the shipped OFA predictor."""

from __future__ import annotations

import numpy as np
import pytest

from latbench import datasets
from latbench.predictor import TrainingSettings, load_pretrained, pretrain, transfer
from latbench.predictor.features import codes, cost_features
from latbench.ranking import spearman

SMALL = TrainingSettings(samples_per_device=100, epochs=3, transfer_epochs=10)
TARGET = "titan_rtx_1"


@pytest.fixture(scope="module")
def ofa() -> datasets.Dataset:
    return datasets.load("help-ofa")


@pytest.mark.slow
def test_a_short_transfer_to_an_unseen_gpu_ranks_ofa_networks(ofa: datasets.Dataset) -> None:
    task = datasets.get_task("OA")
    pre = pretrain("ofa-mbv3", list(task.train), settings=SMALL, seed=0)
    assert pre.space == "ofa-mbv3" and TARGET not in pre.source.devices
    pick = np.random.default_rng(0).choice(len(ofa.archs), 20, replace=False)
    model = transfer(pre, TARGET, [ofa.archs[i] for i in pick], ofa.vector(TARGET)[pick])
    predicted = model.predict(list(ofa.archs))
    measured = ofa.vector(TARGET)
    assert predicted.shape == (5000,) and np.all(predicted > 0)
    flops = spearman(cost_features("ofa-mbv3", codes("ofa-mbv3", list(ofa.archs)))[:, 0], measured)
    srcc = spearman(predicted, measured)
    assert srcc > flops + 0.2, (srcc, flops)


def test_the_shipped_ofa_predictor_knows_every_help_ofa_device(ofa: datasets.Dataset) -> None:
    pre = load_pretrained("ofa-mbv3")
    assert pre.space == "ofa-mbv3" and list(pre.source.devices) == ofa.device_names
    assert pre.info["dataset"] == "help-ofa"
