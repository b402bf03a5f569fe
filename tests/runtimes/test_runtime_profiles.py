"""Per-operator profiles from each engine's own profiler, on runs of their own: the model the runtime holds keeps
running as before, and an engine without a profiler says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from latbench.agents.runtimes.tflite import TfliteRuntime
from latbench.agents.runtimes.torch import TorchRuntime
from latbench.agents.runtimes.tvm import TvmRuntime
from latbench.errors import ProfilingUnsupported
from latbench.profiles import by_op_type
from tests.runtimes.runtime_helpers import Built, built_fixture  # noqa: F401  (built_fixture: the fixture)
from tests.support.models import make_conv_model


@pytest.mark.slow
def test_torch_profiles_aten_operators_by_self_time(built: Built) -> None:
    with TorchRuntime(threads=1) as rt:
        rt.load(built.get("nb201", "torch.json").path)
        profile = rt.profile(runs=2, warmup=1)
        rt.run()
    ops = {o.op for o in profile.ops}
    assert profile.runtime == "torch" and profile.runs == 2
    assert any("conv" in op for op in ops) and all(op.startswith("aten::") for op in ops)
    assert all(o.ms > 0 and o.calls >= 1 for o in profile.ops)


@pytest.mark.slow
def test_tvm_profiles_its_compiled_kernels_not_the_vm_builtins(tmp_path: Path) -> None:
    conv = tmp_path / "conv.onnx"
    make_conv_model(conv, channels=8, hw=16, seed=2)
    with TvmRuntime(threads=1, cache_dir=tmp_path / "tvm") as rt:
        rt.load(conv)
        profile = rt.profile(runs=3, warmup=1)
        rt.run()
    types = [t.op for t in by_op_type(profile)]
    assert profile.runtime == "tvm" and any("conv2d" in op for op in types)
    assert not any(o.node.startswith("vm.") for o in profile.ops) and profile.total_ms > 0


def test_litert_has_no_profiler_here() -> None:
    assert not TfliteRuntime.can_profile()
    with pytest.raises(ProfilingUnsupported, match="profiling not supported by runtime tflite"):
        TfliteRuntime().profile()
