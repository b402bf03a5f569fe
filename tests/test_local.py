"""``latbench.measure``: the public Python API behind ``latbench measure``."""

from __future__ import annotations

import numpy as np
import pytest

import latbench
from latbench.agents.measure import TimingSettings
from latbench.errors import InvalidArchitecture, LatbenchError, ResultsFileError
from latbench.hashing import sha256_file
from latbench.resultfile import read_results

FAST = TimingSettings(warmup_runs=2, warmup_time_s=0.02, min_runs=10, min_time_s=0.05)
REQUIRED = {"arch", "space", "runtime", "batch", "threads", "latency_ms", "mean_ms", "std_ms", "min_ms", "p90_ms",
            "p99_ms", "cv", "runs", "stable", "device_id"}  # fmt: skip


@pytest.mark.slow
def test_measures_seeded_samples_with_every_promised_column(tmp_path, artifact_cache):
    rows = latbench.measure("nb201", samples=2, seed=5, settings=FAST, out=tmp_path / "r.csv", cache_dir=artifact_cache)
    assert [r["arch"] for r in rows] == latbench.get_space("nb201").sample(2, seed=5)
    for r in rows:
        assert set(r) >= REQUIRED
        assert r["runs"] == len(r["times_ms"]) >= 10
        assert r["min_ms"] <= r["latency_ms"] <= r["p99_ms"]
        assert r["arch_index"] == latbench.get_space("nb201").index(r["arch"])
        assert len(r["artifact_sha256"]) == 64
    assert [r["arch"] for r in latbench.read_results(tmp_path / "r.csv")] == [r["arch"] for r in rows]


@pytest.mark.slow
def test_rerun_measures_only_what_is_missing(tmp_path, artifact_cache):
    out = tmp_path / "r.parquet"
    archs = latbench.get_space("fbnet").sample(3, seed=2)
    first = latbench.measure("fbnet", archs[:2], settings=FAST, out=out, cache_dir=artifact_cache)
    measured: list[str] = []
    events: list[tuple[str, int | None, int | None]] = []
    rows = latbench.measure(
        "fbnet", archs, settings=FAST, out=out, cache_dir=artifact_cache,
        progress=lambda e: events.append((e.stage, e.done, e.total)),
        on_result=lambda row: measured.append(str(row["arch"])),
    )  # fmt: skip
    assert measured == [archs[2]]
    assert events == [("export", 0, 1), ("export", 1, 1), ("measure", 2, 3), ("measure", 3, 3)]
    assert [r["arch"] for r in rows] == archs
    assert [r["measured_at"] for r in rows[:2]] == [r["measured_at"] for r in first]
    assert len(latbench.read_results(out)) == 3


@pytest.mark.slow
def test_other_settings_are_refused_and_the_file_is_untouched(tmp_path, artifact_cache):
    out = tmp_path / "r.csv"
    arch = latbench.get_space("nb201").sample(1, seed=1)
    latbench.measure("nb201", arch, settings=FAST, out=out, cache_dir=artifact_cache)
    before = out.read_bytes()
    with pytest.raises(ResultsFileError, match="batch: file has 1, this run 2"):
        latbench.measure("nb201", arch, batch=2, settings=FAST, out=out, cache_dir=artifact_cache)
    with pytest.raises(InvalidArchitecture):
        latbench.measure("nb201", ["|bad~0|"], settings=FAST, out=out, cache_dir=artifact_cache)
    assert out.read_bytes() == before


def test_inputs_are_checked_before_anything_runs(tmp_path):
    with pytest.raises(LatbenchError, match="either architectures or a sample size"):
        latbench.measure("nb201", ["x"], samples=3)
    with pytest.raises(LatbenchError, match="architectures to measure or a sample size"):
        latbench.measure("nb201")
    with pytest.raises(LatbenchError, match="multiple of 4"):
        latbench.measure("nb201", samples=1, resolution=30)
    with pytest.raises(LatbenchError, match="unknown runtime"):
        latbench.measure("nb201", samples=1, runtime="tensorflow")
    assert not list(tmp_path.iterdir())


def test_model_files_through_the_python_api(tmp_path, artifact_cache):
    from tests.support.modelfiles import resnet_onnx, transformer_onnx

    resnet, bert = resnet_onnx(tmp_path / "resnet.onnx"), transformer_onnx(tmp_path / "bert.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_text("not a model")
    refused: list[tuple[str, str]] = []
    out = tmp_path / "r.parquet"
    rows = latbench.measure(
        models=[resnet, junk, bert], inputs={"input_ids": (1, 8)}, settings=FAST, out=out,
        on_refused=lambda path, line: refused.append((path, line)),
        cache_dir=artifact_cache, reference=False,
    )  # fmt: skip
    assert [(r["arch"], r["space"], r["batch"], r["input_shapes"]) for r in rows] == [
        ("resnet.onnx", "model", 1, "pixels:1x3x32x32"),
        ("bert.onnx", "model", 1, "input_ids:1x8"),
    ]
    assert refused == [(str(junk), f"model {junk}: not a LiteRT or ONNX model (text: 'not a model')")]
    with pytest.warns(UserWarning, match="junk.onnx: not a LiteRT or ONNX model"):
        again = latbench.measure(models=[junk, bert], inputs=["input_ids:1x8"], settings=FAST, out=out, reference=False)
    assert again == [rows[1]]
    with pytest.raises(LatbenchError, match="either a search space or model files"):
        latbench.measure("nb201", models=[resnet])
    with pytest.raises(LatbenchError, match="input shapes are for model files"):
        latbench.measure("nb201", samples=1, inputs=["x:1x3"])


def test_a_model_with_control_flow_is_named_and_timed_on_the_given_inputs(tmp_path):
    """Finding 7: the branch a random input picked decided a 70x difference; the row says which data it ran on."""
    from tests.support.controlflow import SHAPE, control_flow_onnx

    model = control_flow_onnx(tmp_path / "branchy.onnx")
    x = np.abs(np.random.default_rng(1).standard_normal(SHAPE)).astype(np.float32)
    np.savez(tmp_path / "heavy.npz", x=x)
    np.savez(tmp_path / "light.npz", x=-x)
    settings = TimingSettings(warmup_runs=2, warmup_time_s=0.02, min_runs=20, min_time_s=0.05, max_attempts=1)
    with pytest.warns(UserWarning, match=r"branchy.onnx: holds control flow \(If\).*--input-data FILE.npz"):
        [plain] = latbench.measure(models=[model], settings=settings, reference=False)
    assert plain["input_data"] == "random(seed=0)"
    out = tmp_path / "r.csv"
    heavy, light = (
        latbench.measure(
            models=[model], input_data=tmp_path / f"{name}.npz", settings=settings, reference=False, out=out
        )
        for name in ("heavy", "light")
    )
    assert heavy[0]["input_data"] == f"npz(sha256={sha256_file(tmp_path / 'heavy.npz')})"
    assert light[0]["input_data"] == f"npz(sha256={sha256_file(tmp_path / 'light.npz')})"
    assert float(heavy[0]["latency_ms"]) > 4 * float(light[0]["latency_ms"])  # ~15x here; other data, other row
    assert len(read_results(out)) == 2
