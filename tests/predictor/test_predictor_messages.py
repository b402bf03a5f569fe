"""Messages that name the real cause: a dataset of another space, an empty results file, one trial's spread, a
ranking no better than chance, and an adaptive run whose device is one of its own sources."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from latbench import datasets
from latbench.cli import app
from latbench.predictor import PredictorError, accuracy, adaptive, pretrain, targets


def test_pretraining_on_a_dataset_of_another_space_names_the_mismatch() -> None:
    with pytest.raises(
        PredictorError, match=r"fbnet predictor cannot learn from datasets of another space: help-nb201 \(nb201\)"
    ):
        pretrain("fbnet", ["pixel2", "raspi4"], ["help-nb201"])


def test_an_empty_results_file_is_named_with_the_transfer(tmp_path: Path) -> None:
    empty = tmp_path / "results.csv"
    empty.write_text("")
    with pytest.raises(PredictorError, match=f"cannot transfer to my-pi from {empty}: "):
        targets.from_results(empty, "my-pi")


def test_a_ranking_below_what_chance_reaches_is_caveated() -> None:
    assert accuracy.chance_srcc(20) == pytest.approx(0.377, abs=1e-3)
    assert accuracy.ranking_caveat(0.9, 20) is None
    assert "no better than chance" in (accuracy.ranking_caveat(0.1, 20) or "")
    assert "no better than chance" in (accuracy.ranking_caveat(-0.25, 10) or "")


def test_an_adaptive_run_on_a_source_devices_own_table_carries_the_transfers_caveat() -> None:
    nb = datasets.load("help-nb201")
    run = adaptive.run(
        adaptive.acquisition_for("nb201"), "my-pi", adaptive.table_oracle(nb.archs, nb.vector("pixel2")), 10
    )
    assert run.caveat is not None and "source device pixel2's own latencies" in run.caveat
    assert run.model.caveat is not None and adaptive.SHORT_OF_TARGET in run.caveat


def test_eval_of_one_trial_shows_no_spread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LATBENCH_HOME", str(tmp_path))
    result = CliRunner().invoke(
        app, ["predictor", "eval", "--task", "ND", "-n", "3", "--trials", "1", "--method", "flops"]
    )
    assert result.exit_code == 0, result.output
    assert "± 0." not in result.stdout and "one trial, so no spread" in " ".join(result.stdout.split())
    as_json = CliRunner().invoke(
        app, ["predictor", "eval", "--task", "ND", "-n", "3", "--trials", "1", "--method", "flops", "--json"]
    )
    assert '"std_srcc": null' in as_json.stdout
