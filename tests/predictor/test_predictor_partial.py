"""Partial coverage: every method pretrains, transfers and predicts when source devices measured different
architecture subsets (a shipped table with cells dropped), and ranks as well as on the full table."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from latbench import datasets
from latbench.predictor import METHODS, PredictorError, TrainingSettings, transfer
from latbench.predictor.predictor import pretrain_on
from latbench.predictor.sources import SourceTable
from latbench.ranking import spearman

TINY = TrainingSettings(samples_per_device=60, epochs=1, transfer_epochs=2)
SOURCES = ["2080ti_1", "titan_rtx_1", "titanxp_1", "pixel3", "raspi4", "gold_6226"]
TARGET = "1080ti_1"
NETWORKS = ("latbench", "nasflat", "help", "multipredict")
"""Methods with a network, pretrained here at a toy scale: they are checked to run and rank, not compared."""


@pytest.fixture(scope="module")
def holey() -> datasets.Dataset:
    """help-fbnet's sources and target with cells dropped: each source misses its own random 20%, raspi4 measured
    only the first 2,000 architectures, and architectures 4,900-4,999 no source device measured."""
    full = datasets.load("help-fbnet").select([*SOURCES, TARGET], name="holey-fbnet")
    latency = full.latency.copy()
    rng = np.random.default_rng(0)
    for row in range(len(SOURCES)):
        latency[row, rng.random(latency.shape[1]) < 0.2] = np.nan
    latency[SOURCES.index("raspi4"), 2000:] = np.nan
    latency[: len(SOURCES), 4900:] = np.nan
    return replace(full, latency=latency)


def test_imputed_source_cells_rank_like_the_dropped_values(holey: datasets.Dataset) -> None:
    full = datasets.load("help-fbnet").select(SOURCES)
    table = SourceTable.from_dataset(holey, tuple(SOURCES))
    filled = table.lookup(table.arch_codes)
    assert np.isnan(filled[4900:]).all() and not np.isnan(filled[:4900]).any()
    measured = ~np.isnan(holey.latency[: len(SOURCES), :4900].T)
    assert np.allclose(filled[:4900][measured], np.log(full.latency[:, :4900].T[measured]), rtol=1e-6)
    for d, device in enumerate(SOURCES):
        dropped = ~measured[:, d]
        assert spearman(filled[:4900][dropped, d], np.log(full.vector(device)[:4900][dropped])) > 0.8, device


@pytest.mark.slow
@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_trains_transfers_and_predicts_with_holes(holey: datasets.Dataset, method: str) -> None:
    pre = pretrain_on(holey, SOURCES, method, settings=TINY)
    measured = np.flatnonzero(~np.isnan(holey.vector(TARGET)))
    pick = np.random.default_rng(1).choice(measured[:4900], 20, replace=False)
    if method == "help":
        refs = {a for a in holey.archs}.intersection(_references())
        pick = np.array(sorted({holey.archs.index(a) for a in refs} | set(pick[:10])))
    archs, latency = [holey.archs[i] for i in pick], holey.vector(TARGET)[pick]
    model = transfer(pre, TARGET, archs, latency)
    covered = [holey.archs[i] for i in range(4900)]
    predicted = model.predict(covered)
    assert np.isfinite(predicted).all() and (predicted > 0).all()
    srcc = spearman(predicted, holey.vector(TARGET)[:4900])
    if method in NETWORKS:
        assert srcc > 0.3
    else:
        full = datasets.load("help-fbnet").select([*SOURCES, TARGET])
        whole = transfer(pretrain_on(full, SOURCES, method), TARGET, archs, latency)
        assert srcc > spearman(whole.predict(covered), holey.vector(TARGET)[:4900]) - 0.03
    uncovered = list(holey.archs[4900:])
    if method in ("ridge", "nnls"):
        with pytest.raises(PredictorError, match="no source device measured 100 of these"):
            model.predict(uncovered)
    else:
        assert np.isfinite(model.predict(uncovered)).all()


def _references() -> list[str]:
    from latbench.predictor.reference import reference_archs

    return list(reference_archs("fbnet"))
