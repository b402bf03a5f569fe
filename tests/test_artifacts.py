"""The artifact cache exports each model once, to a self-contained ONNX file that runs like the PyTorch model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

import latbench.artifacts
from latbench.artifacts import OPSET, ArtifactCache, ArtifactKey
from latbench.errors import InvalidArchitecture, LatbenchError, MissingDependency, UnknownSpace
from latbench.spaces import get_space
from latbench.spaces.builders import build_model
from latbench.spaces.fbnet import MACRO

NB201_ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|"


def key(
    space: str = "nb201",
    arch: str = NB201_ARCH,
    batch: int = 1,
    resolution: int = 32,
    classes: int | None = None,
    seed: int = 0,
) -> ArtifactKey:
    classes = classes or get_space(space).default_classes
    return ArtifactKey(space, arch, batch, resolution, classes, OPSET, seed)


def fbnet_with_grouped_and_strided_skip() -> str:
    """A sampled FBNet with a stride-2 skip (1x1 conv) and grouped blocks with channel shuffle, one strided."""
    blocks = get_space("fbnet").sample(1, seed=5)[0].split("-")
    strided = [i for i, layer in enumerate(MACRO) if layer.stride == 2]
    blocks[0], blocks[strided[0]], blocks[strided[1]] = "k3_e1_g2", "skip", "k5_e1_g2"
    return "-".join(blocks)


@pytest.fixture
def cache(tmp_path: Path) -> ArtifactCache:
    return ArtifactCache(tmp_path / "cache")


@pytest.fixture
def exports(monkeypatch: pytest.MonkeyPatch) -> list[ArtifactKey]:
    """The keys exported from now on, in order."""
    seen: list[ArtifactKey] = []
    real = latbench.artifacts.export_onnx

    def counting(k: ArtifactKey, path: Path) -> None:
        seen.append(k)
        real(k, path)

    monkeypatch.setattr(latbench.artifacts, "export_onnx", counting)
    return seen


@pytest.mark.parametrize(
    ("space", "arch"),
    [
        *(pytest.param("nb201", a, id=f"nb201-{i}") for i, a in enumerate(get_space("nb201").sample(3, seed=4))),
        *(pytest.param("fbnet", a, id=f"fbnet-{i}") for i, a in enumerate(get_space("fbnet").sample(2, seed=4))),
        pytest.param("fbnet", fbnet_with_grouped_and_strided_skip(), id="fbnet-grouped-strided-skip"),
    ],
)
@pytest.mark.slow
def test_onnx_runtime_matches_pytorch(cache: ArtifactCache, space: str, arch: str) -> None:
    artifact = cache.build(key(space, arch, batch=2))
    x = np.random.default_rng(0).standard_normal(artifact.input_shape).astype(np.float32)
    session = onnxruntime.InferenceSession(str(artifact.path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert session.get_inputs()[0].shape == [2, 3, 32, 32]
    assert [o.name for o in session.get_outputs()] == ["logits"]
    (logits,) = session.run(None, {"input": x})
    with torch.no_grad():
        expected = build_model(space, arch).eval()(torch.from_numpy(x)).numpy()
    assert logits.shape == artifact.output_shape == (2, get_space(space).default_classes)
    np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-4)


def test_artifact_is_one_file_with_the_pinned_opset(cache: ArtifactCache) -> None:
    artifact = cache.build(key())
    model = onnx.load(str(artifact.path))
    assert {(o.domain, o.version) for o in model.opset_import} == {("", OPSET)}
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    digest = artifact.key.digest()
    assert sorted(p.name for p in cache.root.iterdir()) == [f"{digest}.json", f"{digest}.onnx"]


def test_second_build_reuses_the_file(cache: ArtifactCache, exports: list[ArtifactKey]) -> None:
    first = cache.build(key())
    mtime = first.path.stat().st_mtime_ns
    second = cache.build(key())
    assert exports == [key()]
    assert second == first
    assert second.path.stat().st_mtime_ns == mtime


@pytest.mark.slow
def test_corrupted_file_is_detected_and_rebuilt(cache: ArtifactCache, exports: list[ArtifactKey]) -> None:
    original = cache.build(key())
    data = bytearray(original.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    original.path.write_bytes(bytes(data))
    assert cache.get(key()) is None
    rebuilt = cache.build(key())
    assert len(exports) == 2
    assert rebuilt.sha256 == original.sha256
    assert cache.get(key()) == rebuilt


@pytest.mark.slow
def test_missing_file_or_manifest_counts_as_missing(cache: ArtifactCache) -> None:
    artifact = cache.build(key())
    artifact.path.with_suffix(".json").write_text("{not json")
    assert cache.get(key()) is None
    cache.build(key()).path.unlink()
    assert cache.get(key()) is None


@pytest.mark.slow
def test_each_batch_size_is_its_own_artifact(cache: ArtifactCache) -> None:
    one, two = cache.build(key(batch=1)), cache.build(key(batch=2))
    assert one.path != two.path
    assert one.sha256 != two.sha256
    assert (one.input_shape, two.input_shape) == ((1, 3, 32, 32), (2, 3, 32, 32))


@pytest.mark.slow
def test_bytes_are_the_same_in_fresh_caches(tmp_path: Path) -> None:
    k = key("fbnet", fbnet_with_grouped_and_strided_skip(), classes=10, resolution=64)
    a, b = (ArtifactCache(tmp_path / name).build(k) for name in ("a", "b"))
    assert a.sha256 == b.sha256
    assert a.path.read_bytes() == b.path.read_bytes()


@pytest.mark.slow
def test_seed_changes_the_bytes(cache: ArtifactCache) -> None:
    assert cache.build(key(seed=0)).sha256 != cache.build(key(seed=1)).sha256


@pytest.mark.slow
def test_build_many_reports_progress_in_order(cache: ArtifactCache) -> None:
    keys = [key(), key(batch=2), key()]
    calls: list[tuple[str, int | None, int | None]] = []
    artifacts = cache.build_many(keys, progress=lambda e: calls.append((e.stage, e.done, e.total)))
    assert [a.key for a in artifacts] == keys
    assert calls == [("export", 0, 3), ("export", 1, 3), ("export", 2, 3), ("export", 3, 3)]
    assert cache.find(artifacts[1].sha256) == artifacts[1]
    assert cache.find("0" * 64) is None


def test_failed_export_leaves_nothing_behind(cache: ArtifactCache, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(k: ArtifactKey, path: Path) -> None:
        path.write_bytes(b"half a model")
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(latbench.artifacts, "export_onnx", crash)
    with pytest.raises(RuntimeError):
        cache.build(key())
    assert list(cache.root.iterdir()) == []
    assert cache.get(key()) is None


def test_missing_torch_is_reported(cache: ArtifactCache, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingDependency, match=r"latbench\[build\]"):
        cache.build(key())


def test_digest_is_pinned() -> None:
    """A new digest orphans every cached artifact, so it may only change with a deliberate BUILDER_VERSION bump."""
    assert key().digest() == "7e9dc33fd458e3f69a3fa5bb80818b9bc39c46a65da7e572914566aac8dbb2fe"
    assert key(seed=1).digest() != key().digest()


def test_keys_take_only_canonical_members() -> None:
    with pytest.raises(LatbenchError, match="canonical"):
        key(arch=f"  {NB201_ARCH}")
    with pytest.raises(InvalidArchitecture):
        key(arch="|nor_conv_3x3~0|")
    with pytest.raises(UnknownSpace):
        key(space="darts")
    with pytest.raises(LatbenchError):
        key(batch=0)
    with pytest.raises(LatbenchError):
        key(resolution=30)


def test_cache_root_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LATBENCH_CACHE_DIR", str(tmp_path))
    assert ArtifactCache().root == tmp_path
    monkeypatch.delenv("LATBENCH_CACHE_DIR")
    assert ArtifactCache().root == Path.home() / ".cache" / "latbench" / "artifacts"


def test_reading_the_cache_needs_no_torch() -> None:
    code = "import sys, latbench.artifacts, latbench.hashing, latbench.spaces; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
