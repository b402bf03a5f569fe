"""The int8 dataset latbench measured itself: listed and loaded as a built-in, both precisions of one machine on
the same architectures, with a card that says how it was measured and how noisy the machine was."""

from __future__ import annotations

import numpy as np

from latbench import datasets

NAME = "here-nb201-int8"


def test_it_is_listed_as_a_builtin_of_nb201():
    [summary] = [s for s in datasets.list_datasets() if s.name == NAME]
    assert summary.builtin and summary.space == "nb201" and summary.kind == "builtin"
    assert summary.devices == ("cpu_ort_fp32", "cpu_ort_int8")


def test_both_precisions_cover_the_same_architectures_on_one_machine():
    ds = datasets.load(NAME)
    assert ds.builtin and len(ds.archs) == 300 and not np.isnan(ds.latency).any() and (ds.latency > 0).all()
    fp32, int8 = ds.devices
    assert (fp32.settings["precision"], int8.settings["precision"]) == ("fp32", "int8")
    assert fp32.settings["device_id"] == int8.settings["device_id"] and fp32.runtime == int8.runtime == "onnxruntime"
    assert (fp32.batch, fp32.threads, fp32.resolution, fp32.classes) == (1, 1, 32, 10)
    assert "int8" in int8.description and "shared" in int8.description


def test_the_card_says_where_when_and_how_noisy():
    provenance = datasets.load(NAME).provenance
    assert "benchmarks/measure_int8_dataset.py" in provenance["source"]
    assert "quantize_static" in provenance["method"] and "generated" in provenance["method"]
    assert "shared" in provenance["caveat"] and set(provenance["unstable"]) == {"fp32", "int8"}
