"""TVM compiles an ONNX artifact for this CPU once, runs it like ONNX Runtime, and turns a tuner crash into an error."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from latbench.agents.runtimes.tvm import TvmRuntime, host_target, run_child, tune_in_child
from latbench.errors import RuntimeUnavailable
from tests.support.models import make_conv_model


@pytest.fixture(scope="module")
def conv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tvm") / "conv.onnx"
    make_conv_model(path, channels=8, hw=16, seed=2)
    return path


@pytest.mark.slow
def test_compiles_for_the_host_once_and_matches_onnxruntime(conv: Path, tmp_path: Path) -> None:
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    with TvmRuntime(threads=1, cache_dir=tmp_path) as rt:
        rt.load(conv)
        rt.run()
        got = rt.infer(x)
        library = rt.library
        assert rt.settings()["target"] == host_target(1)
    expected = onnxruntime.InferenceSession(str(conv), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
    assert library is not None and library.parent == tmp_path
    built_at = library.stat().st_mtime_ns
    with TvmRuntime(threads=1, cache_dir=tmp_path) as again:
        again.load(conv)
        assert again.library == library
    assert library.stat().st_mtime_ns == built_at
    assert [p.name for p in tmp_path.iterdir()] == [library.name]


@pytest.mark.slow
def test_the_library_is_per_target(conv: Path, tmp_path: Path) -> None:
    one, two = TvmRuntime(threads=1, cache_dir=tmp_path), TvmRuntime(threads=2, cache_dir=tmp_path)
    assert one.compiled(conv) != two.compiled(conv)


def test_host_target_names_this_cpu() -> None:
    target = host_target(4)
    assert target["kind"] == "llvm" and target["num-cores"] == 4
    assert target["mcpu"] and target["mcpu"] != "generic"


def test_a_crashing_tuner_is_a_clear_error() -> None:
    """MetaSchedule segfaults in this TVM wheel (docs/tvm-metaschedule-crash.md; a real tuning run takes minutes,
    so a real segfault stands in): the agent survives and says what happened."""
    crash = [sys.executable, "-c", "import ctypes; ctypes.string_at(0)"]
    with pytest.raises(RuntimeUnavailable, match=r"tuning of m\.onnx crashed with signal 11; use provider 'cpu'"):
        run_child(crash, None, "tvm MetaSchedule tuning of m.onnx")
    failing = [sys.executable, "-c", "raise SystemExit('no tuning records')"]
    with pytest.raises(RuntimeUnavailable, match="failed: no tuning records"):
        run_child(failing, None, "tvm MetaSchedule tuning of m.onnx")


CRASHING_TUNER = """import ctypes, pathlib, types
def _tune(*, work_dir, **_):
    (pathlib.Path(work_dir) / "logs").mkdir()
    pathlib.Path({seen!r}).write_text(work_dir)
    ctypes.string_at(0)
relax = types.SimpleNamespace(pipeline=types.SimpleNamespace(static_shape_tuning_pipeline=_tune))
target = types.SimpleNamespace(Target=dict)
"""


def test_a_tuning_child_that_crashes_leaves_no_work_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real child process runs, with a stand-in ``tvm`` whose tuner writes its logs and then segfaults as
    MetaSchedule does here; its work dir, in a private TMPDIR, is gone once the error is raised."""
    fake, scratch, seen = tmp_path / "fake", tmp_path / "tmp", tmp_path / "seen"
    (fake / "tvm").mkdir(parents=True)
    (fake / "tvm" / "__init__.py").write_text(CRASHING_TUNER.replace("{seen!r}", repr(str(seen))))
    scratch.mkdir()
    monkeypatch.setenv("PYTHONPATH", str(fake))
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with pytest.raises(RuntimeUnavailable, match=r"tuning of m\.onnx crashed with signal 11"):
        tune_in_child(tmp_path / "m.onnx", tmp_path / "m.so", {"kind": "llvm"}, trials=8)
    work_dir = Path(seen.read_text())
    assert work_dir.parent == scratch and work_dir.name.startswith("latbench-tune-")
    assert list(scratch.iterdir()) == []


def test_tvm_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(RuntimeUnavailable, match="choose one of: cpu, cpu-tuned"):
        TvmRuntime(provider="cuda")
    rt = TvmRuntime(cache_dir=tmp_path)
    with pytest.raises(RuntimeError, match="no model loaded"):
        rt.run()
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(RuntimeUnavailable, match="cannot load"):
        rt.load(tmp_path / "junk.onnx")
    assert TvmRuntime(provider="cpu-tuned", cache_dir=tmp_path).tuning_trials > 0
