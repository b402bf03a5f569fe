"""Every runtime measures the same network: for the same weights and input, all give the same outputs."""

from __future__ import annotations

import numpy as np
import pytest

from latbench.agents.runtimes import available_runtimes, get_runtime, runtime_status
from tests.runtimes.runtime_helpers import Built, built_fixture, sample_input  # noqa: F401  (built_fixture: the fixture)

pytestmark = pytest.mark.slow  # converts and compiles networks for every runtime

HALF_PRECISION = {"tflite-fp16"}
"""Runtimes whose model stores float16 weights: a slightly different network (its exactness against PyTorch with
rounded weights is tested in test_tflite_runtime.py), so here it must only track the float32 logits closely."""


@pytest.mark.parametrize("space", ["nb201", "fbnet"])
def test_every_available_runtime_gives_the_same_outputs(built: Built, space: str) -> None:
    runtimes = [name for name in available_runtimes() if runtime_status(name).available]
    assert {"onnxruntime", "tflite", "tflite-fp16", "tvm", "torch"} <= set(runtimes)
    x = sample_input(built.get(space).key)
    outputs = {}
    for name in runtimes:
        runtime_cls = get_runtime(name)
        artifact = built.get(space, runtime_cls.artifact_format)
        options = {"cache_dir": built.tvm_cache} if name == "tvm" else {}
        with runtime_cls(threads=1, **options) as rt:
            rt.load(artifact.path)
            rt.run()
            outputs[name] = rt.infer(x)
    reference = outputs.pop("onnxruntime")
    assert reference.shape == built.get(space).output_shape
    for name, got in outputs.items():
        if name in HALF_PRECISION:
            assert np.corrcoef(got.ravel(), reference.ravel())[0, 1] > 0.999, name
            assert np.abs(got - reference).max() < 0.02 * np.ptp(reference), name
        else:
            np.testing.assert_allclose(got, reference, rtol=0, atol=1e-3, err_msg=name)
