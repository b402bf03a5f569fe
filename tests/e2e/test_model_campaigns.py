"""Campaigns of users' model files over real HTTP: uploads a real collector refuses or keeps once, and a campaign of
three ONNX files that two real agents measure to the end, exported and built into a model-set dataset."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import subprocess
from pathlib import Path

import httpx
import pytest

from latbench.agents.modelfile import ModelFile
from latbench.client import CollectorClient
from latbench.datasets import storage
from latbench.errors import CollectorRejected
from latbench.protocol import CampaignCreate, ModelRef
from tests.support.modelfiles import external_data_onnx, mobilenet_onnx, resnet_onnx, transformer_onnx
from tests.support.ports import free_port
from tests.support.processes import ADMIN_TOKEN, LATBENCH, Agent, Collector, env, totals, wait_for

FAST = ["--min-runs", "10", "--min-time", "0.05", "--warmup-time", "0.02", "--attempts", "1"]
"""Short timings, measured once however unstable: on a busy machine re-measuring tripled each job's time, and
these tests are about the fleet, not the stability checks (tests/agents/test_measure.py)."""
MAX_MODEL_MB = 0.25


@pytest.fixture
def collector(tmp_path: Path, artifact_cache: Path):
    c = Collector(f"sqlite:///{tmp_path / 'collector.sqlite'}", tmp_path / "collector", free_port(), 4,
                  artifact_cache, "--max-model-mb", str(MAX_MODEL_MB)).start()  # fmt: skip
    yield c
    c.stop()


def _put(collector: Collector, sha256: str, content: bytes, token: str | None = ADMIN_TOKEN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.put(f"{collector.url}/v1/admin/models/{sha256}", content=content, headers=headers, timeout=30)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.slow
def test_uploads_are_checked_on_arrival_and_kept_once(collector: Collector, tmp_path: Path, artifact_cache: Path):
    model = mobilenet_onnx(tmp_path / "mobilenet.onnx").read_bytes()
    sha = _sha256(model)

    assert _put(collector, sha, model, token=None).status_code == 401
    enroll = collector.cli("token", "create")
    assert _put(collector, sha, model, token=enroll).status_code == 403
    damaged = _put(collector, sha, model[:-1] + bytes([model[-1] ^ 1]))
    assert damaged.status_code == 400 and "damaged on the way" in damaged.json()["message"]
    junk = b"not a model at all" * 100
    assert _put(collector, _sha256(junk), junk).status_code == 400
    big = model + b"\0" * int(MAX_MODEL_MB * 2**20)
    too_large = _put(collector, _sha256(big), big)
    assert too_large.status_code == 413 and too_large.json()["code"] == "too_large"
    assert not list((artifact_cache / "models").glob(".*.part*")), "a refused upload left a partial file"

    first, again = _put(collector, sha, model), _put(collector, sha, model)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == {"sha256": sha, "format": "onnx", "size": len(model)}
    assert [p.name for p in (artifact_cache / "models").glob(f"{sha}*")] == [f"{sha}.onnx"]
    # a model reading its weights from a file beside it, named as a stored model is in the collector's folder
    leaning = external_data_onnx(tmp_path / "leaning.onnx", f"{sha}.onnx").read_bytes()
    refused = _put(collector, _sha256(leaning), leaning)
    assert refused.status_code == 400 and "agents get one file" in refused.json()["message"], refused.text

    with CollectorClient(collector.url, ADMIN_TOKEN) as client:
        assert client.model(sha) is not None and client.model(_sha256(junk)) is None
        missing = CampaignCreate(models=[ModelRef(name="gone.onnx", sha256=_sha256(b"gone"))], runtime="onnxruntime")
        with pytest.raises(CollectorRejected, match="not on the collector: upload it first"):
            client.create_campaign(missing)
        wrong_runtime = CampaignCreate(models=[ModelRef(name="m.onnx", sha256=sha)], runtime="tflite")
        with pytest.raises(CollectorRejected, match="runtime tflite loads tflite files, not onnx"):
            client.create_campaign(wrong_runtime)


@pytest.mark.slow  # real agents measure real models
def test_a_model_file_campaign_finished_by_two_agents_is_exported_and_built(
    collector: Collector, tmp_path: Path, artifact_cache: Path
):
    folder = tmp_path / "models"
    folder.mkdir()
    files = [mobilenet_onnx(folder / "mobilenet.onnx"), resnet_onnx(folder / "resnet.onnx"),
             transformer_onnx(folder / "transformer.onnx")]  # fmt: skip
    token = collector.cli("token", "create", "--name", "e2e")
    created = subprocess.run(
        [*LATBENCH, "campaign", "create", "--models", str(folder), "--runtime", "onnxruntime",
         "--input", "input_ids:1x16", "--name", "mine", *FAST, "--collector", collector.url],
        capture_output=True, text=True, env=env(), timeout=120,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    campaign = created.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{32}", campaign), created.stdout
    assert created.stderr.count(": uploaded (onnx") == 3
    assert collector.status(campaign)["state"] in ("building", "running")  # nothing to build but the reference

    agents = [Agent(collector, token, f"agent-{i}", tmp_path / f"agent-{i}", "--max-jobs", "1") for i in (1, 2)]
    try:
        wait_for(lambda: totals(collector.status(campaign))["done"] == 3, 300, "3 model results", interval_s=0.5)
    finally:
        codes = [a.stop() for a in agents]
    assert codes == [0, 0], [a.log.read_text()[-2000:] for a in agents]
    status = collector.status(campaign)
    assert status["state"] == "done" and status["space"] == "model" and status["samples"] == 3

    out = tmp_path / "out.csv"
    collector.cli("results", "export", "--campaign", campaign, "--out", str(out))
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    shas = {p.name: _sha256(p.read_bytes()) for p in files}
    assert len({r["device"] for r in rows}) == 1 and len(rows) == 3
    assert {r["arch"]: r["artifact_sha256"] for r in rows} == shas
    assert {r["space"] for r in rows} == {"model"}
    assert {r["arch"]: r["input_shapes"] for r in rows} == {
        "mobilenet.onnx": "image:1x3x32x32",
        "resnet.onnx": "pixels:1x3x32x32",
        "transformer.onnx": "input_ids:1x16",
    }
    assert all(float(r["latency_ms"]) > 0 for r in rows) and {r["resolution"] for r in rows} == {""}
    assert {r["arch"]: r["opset"] for r in rows} == {p.name: str(ModelFile.open(p).opset) for p in files}  # as local
    downloaded = [p for i in (1, 2) for p in (tmp_path / f"agent-{i}" / "artifacts").glob("*.onnx")]
    assert set(shas.values()) <= {p.stem for p in downloaded}
    assert all(_sha256(p.read_bytes()) == p.stem for p in downloaded)

    home = tmp_path / "home"
    built = subprocess.run([*LATBENCH, "dataset", "build", "--campaign", campaign, "--include-unstable",
                            "--collector", collector.url],
                           capture_output=True, text=True, env=env(LATBENCH_HOME=str(home)), timeout=120)  # fmt: skip
    assert built.returncode == 0, built.stderr
    card = json.loads((home / "datasets" / built.stdout.strip() / "card.json").read_text())
    assert card["space"] == "model" and card["n_archs"] == 3
    ds = storage.read(home / "datasets" / built.stdout.strip())
    assert sorted(ds.archs) == sorted(shas) and ds.device_names == [rows[0]["device"]]
    by_arch = {r["arch"]: float(r["latency_ms"]) for r in rows}
    assert [ds.vector(ds.device_names[0])[ds.archs.index(a)] for a in by_arch] == pytest.approx(list(by_arch.values()))
