"""What the devices of a split measured in common: a small dataset beside the built-in one narrows every
correlation, and a target that measured no more than the samples it is transferred from cannot be scored; both
are said, naming the dataset and the device."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from latbench import datasets
from latbench.datasets.protocol import SCORED_SAMPLES, pool_coverage
from tests.datasets.dataset_helpers import cli


def small_dataset(name: str, device: str, n_archs: int) -> datasets.Dataset:
    """One device measured on ``n_archs`` NB201 cells (raspi4's published latencies under another name)."""
    view = datasets.load("help-nb201").select(["raspi4"], name=name)
    latency = view.latency.copy()
    latency[:, n_archs:] = np.nan
    return replace(view, latency=latency, devices=(replace(view.devices[0], name=device, description=""),))


@pytest.fixture
def vm20(home) -> str:
    datasets.save(small_dataset("vm20", "my-vm", 20))
    return "vm20"


def test_the_coverage_names_the_dataset_that_narrows_it_and_the_thin_target(vm20: str) -> None:
    alone = pool_coverage("nb201")
    assert alone.shared == 15_625 and alone.narrowed_by == () and alone.warnings(["raspi4"]) == []
    joined = pool_coverage("nb201", extra=[vm20])
    assert joined.shared == 20 and joined.devices == alone.devices + 1
    (narrowed,) = joined.narrowed_by
    assert (narrowed.dataset, narrowed.devices, narrowed.shared, narrowed.without) == (vm20, ("my-vm",), 20, 15_625)
    lines = joined.warnings(["my-vm", "raspi4"], samples=SCORED_SAMPLES)
    assert len(lines) == 2 and "'vm20'" in lines[0] and "15,625" in lines[0]
    assert "'my-vm' measured 20" in lines[1]
    assert joined.warnings(["my-vm"], samples=10) == lines[:1]


@pytest.mark.slow  # generates the protocol's splits in a subprocess
def test_splits_say_what_they_correlate_over_and_warn_of_a_small_extra_dataset(vm20: str) -> None:
    plain = cli("tasks", "splits", "--space", "nb201", "--json")
    assert plain.returncode == 0, plain.stderr
    assert "over the 15,625 architectures" in plain.stderr and "warning" not in plain.stderr
    joined = cli("tasks", "splits", "--space", "nb201", "--extra-dataset", vm20, "--json")
    assert joined.returncode == 0, joined.stderr
    assert "over the 20 architectures" in joined.stderr
    assert "warning: dataset 'vm20' (my-vm) measured 20 of the 15,625" in joined.stderr
    assert "target device 'my-vm' measured 20" in joined.stderr
    generated = cli("tasks", "generate", "--space", "nb201", "--datasets", f"help-nb201,{vm20}", "--train", "5",
                    "--test", "5")  # fmt: skip
    assert generated.returncode == 0, generated.stderr
    assert "dataset 'vm20' (my-vm) measured 20 of the 15,625" in generated.stderr
