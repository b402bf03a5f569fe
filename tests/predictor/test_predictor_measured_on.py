"""A transferred model records where its samples were measured, so ``search --verify local`` can tell whether
measuring here checks the model or another machine altogether (``setups.measured_on``, ``is_this_machine``)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

import latbench
from latbench.agents.environment import machine_info
from latbench.datasets import DeviceMeta
from latbench.predictor import Predictor, load_pretrained, setups, targets, transfer
from latbench.resultfile import write_results
from latbench.results_schema import RESULT_COLUMNS


def results_file(path: Path, device_id: str, n: int = 6) -> Path:
    """A results file of ``n`` NB201 cells as ``latbench measure`` writes it, measured on hardware ``device_id``."""
    rows = []
    for i, arch in enumerate(latbench.get_space("nb201").sample(n, seed=1)):
        row: dict[str, object] = {c.name: None for c in RESULT_COLUMNS}
        row.update(space="nb201", arch=arch, latency_ms=1.0 + 0.3 * i, runtime="onnxruntime", provider="cpu",
                   batch=1, threads=1, device_id=device_id, env_hostname="desk", stable=True, flags="")  # fmt: skip
        rows.append(row)
    write_results(path, rows)
    return path


def info_of(where: setups.MeasuredOn) -> dict[str, object]:
    return {setups.MACHINE_KEY: asdict(where)}


@pytest.fixture(scope="module")
def shipped() -> Predictor:
    return load_pretrained("nb201")


def test_results_measured_here_are_this_machine_and_others_are_not(tmp_path: Path) -> None:
    here = targets.from_results(results_file(tmp_path / "here.csv", machine_info().fingerprint()), "desk")
    assert here.where.device_id == machine_info().fingerprint() and here.where.hostname == "desk"
    assert setups.is_this_machine(info_of(here.where)) is True
    there = targets.from_results(results_file(tmp_path / "pi.csv", "0123456789abcdef"), "my-pi")
    assert setups.is_this_machine(info_of(there.where)) is False
    assert there.where.describe() == "my-pi of pi.csv (fingerprint 0123456789abcdef)"


def test_a_published_devices_samples_are_not_this_machine_and_unknown_ones_are_unknown() -> None:
    pixel2 = targets.from_dataset("help-nb201", "pixel2", 5)
    assert pixel2.where.published and pixel2.where.device_id is None
    assert setups.is_this_machine(info_of(pixel2.where)) is False
    imported = setups.MeasuredOn.of_device(DeviceMeta(name="mine"), "my-table")  # a CSV import names no machine
    assert setups.is_this_machine(info_of(imported)) is None
    assert setups.is_this_machine({}) is None and setups.measured_on({}) is None  # files from before the record


def test_the_record_is_saved_with_the_model_and_not_inherited_by_a_later_transfer(
    tmp_path: Path, shipped: Predictor
) -> None:
    chosen = targets.from_results(results_file(tmp_path / "r.csv", machine_info().fingerprint()), "desk")
    model = transfer(shipped, "desk", chosen.archs, chosen.latency_ms, method="ridge")
    chosen.record(model)
    loaded = Predictor.load(model.save(tmp_path / "m.pt"))
    assert setups.measured_on(loaded.info) == chosen.where and setups.is_this_machine(loaded.info) is True
    assert setups.recorded(loaded) == chosen.setup
    again = transfer(loaded, "other", chosen.archs, np.asarray(chosen.latency_ms) * 2, method="ridge")
    assert setups.measured_on(again.info) is None
