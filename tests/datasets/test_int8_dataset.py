"""The int8 datasets latbench measured itself: listed and loaded as built-ins, both precisions of one machine on
the same architectures, with a card that says how they were measured and how noisy the machine was."""

from __future__ import annotations

import numpy as np
import pytest

from latbench import datasets

SHIPPED = {"here-nb201-int8": ("nb201", 300, 10), "here-fbnet-int8": ("fbnet", 100, 100)}
"""Name -> space, architectures, classes."""
NAMES = pytest.mark.parametrize("name", list(SHIPPED))


@NAMES
def test_it_is_listed_as_a_builtin_of_its_space(name):
    [summary] = [s for s in datasets.list_datasets() if s.name == name]
    assert summary.builtin and summary.space == SHIPPED[name][0] and summary.kind == "builtin"
    assert summary.devices == ("cpu_ort_fp32", "cpu_ort_int8")


@NAMES
def test_both_precisions_cover_the_same_architectures_on_one_machine(name):
    space, n_archs, classes = SHIPPED[name]
    ds = datasets.load(name)
    assert ds.builtin and ds.space == space and len(ds.archs) == n_archs
    assert not np.isnan(ds.latency).any() and (ds.latency > 0).all()
    fp32, int8 = ds.devices
    assert (fp32.settings["precision"], int8.settings["precision"]) == ("fp32", "int8")
    assert fp32.settings["device_id"] == int8.settings["device_id"] and fp32.runtime == int8.runtime == "onnxruntime"
    assert (fp32.batch, fp32.threads, fp32.resolution, fp32.classes) == (1, 1, 32, classes)
    assert "int8" in int8.description and "2 logical cores" in int8.description


@NAMES
def test_the_card_says_where_when_and_how_noisy(name):
    provenance = datasets.load(name).provenance
    assert "benchmarks/measure_int8_dataset.py" in provenance["source"]
    assert "quantize_static" in provenance["method"] and "generated" in provenance["method"]
    assert set(provenance["unstable"]) == {"fp32", "int8"}
    counts = ", ".join(f"{n} of {len(datasets.load(name).archs)} {p}" for p, n in provenance["unstable"].items())
    # how busy the machine was, as measured (re-measured idle: the loaded first measurement is docs/benchmarks.md's)
    assert "looked idle" in provenance["caveat"] and provenance["caveat"].endswith(f"is): {counts}.")
