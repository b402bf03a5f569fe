"""``latbench campaign create --models`` as a user runs it on their own files: what it refuses before anything
travels (the input shapes `latbench measure --model` refuses), and what it says of each upload, against a real
collector with a small upload limit."""

from __future__ import annotations

import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch
from torch import nn

from latbench.hashing import sha256_file
from tests.support.modelfiles import dense_onnx, mobilenet_onnx, transformer_onnx
from tests.support.models import FAST_CLI
from tests.support.ports import free_port
from tests.support.processes import LATBENCH, env
from tests.support.served import ADMIN_TOKEN, Clock, Served

LIMIT_BYTES = 2**20
"""The served collector's ``--max-model-mb 1``."""


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    extra = {"LATBENCH_ADMIN_TOKEN": ADMIN_TOKEN}
    return subprocess.run([*LATBENCH, *args], capture_output=True, text=True, env=env(**extra), timeout=timeout)


def create(collector: str, *models: Path, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    paths = [a for path in models for a in ("--models", str(path))]
    return run("campaign", "create", *paths, "--runtime", "onnxruntime", *options, "--collector", collector)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("user")
    return {"mobilenet": mobilenet_onnx(folder / "mobilenet.onnx"), "bert": transformer_onnx(folder / "bert.onnx")}


@pytest.fixture
def collector(tmp_path: Path, artifact_cache: Path) -> Iterator[str]:
    """A real collector that takes model files up to 1 MiB; its URL."""
    with Served(f"sqlite:///{tmp_path / 'c.sqlite'}", artifact_cache, Clock(), max_model_bytes=LIMIT_BYTES) as served:
        yield served.url


@pytest.mark.slow  # three latbench processes
def test_input_shapes_measure_refuses_are_refused_before_anything_is_uploaded(models):
    nowhere = f"http://127.0.0.1:{free_port()}"  # reached only if every file passed
    bert, mobilenet = models["bert"], models["mobilenet"]
    cases = [
        ((bert,), (), f"error: model {bert}: input 'input_ids' has a dynamic dimension 1 ('sequence'); "
                      "give its shape with --input input_ids:1xN"),
        ((mobilenet, bert), ("--input", "image:4x3x32x32", "--input", "input_ids:1x8"),
         f"error: model {mobilenet}: input 'image' has static dimension 0 = 1, --input gives 4"),
        ((mobilenet, bert), ("--input", "input_id:1x8"),
         "error: no model has an input named 'input_id'; their inputs: mobilenet.onnx: image; bert.onnx: input_ids"),
    ]  # fmt: skip
    for files, options, line in cases:
        result = create(nowhere, *files, options=options)
        assert result.returncode == 1, result.stderr
        assert result.stderr.strip() == line and result.stdout == ""


@pytest.mark.slow
def test_uploads_say_whether_they_travelled_and_a_file_over_the_limit_is_named_with_the_limit(
    tmp_path, models, collector
):
    renamed = tmp_path / "mobilenet.bin"  # an ONNX file under another name is taken by its content
    renamed.write_bytes(models["mobilenet"].read_bytes())
    first = create(collector, renamed)
    assert first.returncode == 0, first.stderr
    assert [line.split(" (")[0] for line in first.stderr.splitlines()[:1]] == [f"{renamed}: uploaded"]
    again = create(collector, models["mobilenet"], models["bert"], options=("--input", "input_ids:1x8"))
    assert again.returncode == 0, again.stderr
    said = [line.split(" (")[0] for line in again.stderr.splitlines()[:2]]
    assert said == [f"{models['mobilenet']}: already on the collector", f"{models['bert']}: uploaded"]
    assert len(again.stdout.split()) == 1  # the campaign's id alone

    big = dense_onnx(tmp_path / "big.onnx", 600)  # 1.4 MiB
    over = create(collector, big)
    assert over.returncode == 1
    assert over.stderr.strip() == (
        f"error: {big} is 1.4 MiB; this collector takes model files up to 1.0 MiB (collector serve --max-model-mb)"
    )
    listed = run("campaign", "list", "--json", "--collector", collector)
    assert listed.stdout.count('"campaign_id"') == 2  # the refused one created nothing


@pytest.mark.slow
def test_the_upload_api_tells_its_limit_and_refuses_a_file_in_plain_words(tmp_path, collector):
    big = dense_onnx(tmp_path / "big.onnx", 600)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=f"{collector}/v1/admin/models", headers=headers, timeout=30) as http:
        missing = http.get(f"/{sha256_file(big)}")  # asked before every upload: the limit is known up front
        assert missing.status_code == 404 and missing.json()["detail"] == {"max_bytes": LIMIT_BYTES}
        too_large = http.put(f"/{sha256_file(big)}", content=big.read_bytes())
        assert too_large.status_code == 413 and too_large.json()["detail"] == {"max_bytes": LIMIT_BYTES}
        text = tmp_path / "notes.onnx"
        text.write_text("hello, not a model\n")
        refused = http.put(f"/{sha256_file(text)}", content=text.read_bytes())
        assert refused.status_code == 400
        assert refused.json()["message"] == "the uploaded file: not a LiteRT or ONNX model (text: 'hello, not a model')"


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.fc = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).mean(dim=(2, 3)))


@pytest.mark.slow
def test_the_documented_torch_export_recipe_gives_a_file_campaigns_and_measure_take(tmp_path, collector):
    """torch 2.13's exporter keeps weights beside the file by default; ``external_data=False`` keeps them in it."""
    model, example = TinyNet().eval(), (torch.randn(1, 3, 32, 32),)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, example, tmp_path / "default.onnx")
        torch.onnx.export(model, example, tmp_path / "net.onnx", external_data=False)
    assert (tmp_path / "default.onnx.data").exists() and not (tmp_path / "net.onnx.data").exists()
    refused = create(collector, tmp_path / "default.onnx")
    assert refused.returncode == 1 and "keeps tensor data in default.onnx.data" in refused.stderr
    created = create(collector, tmp_path / "net.onnx")
    assert created.returncode == 0, created.stderr
    out = tmp_path / "r.csv"
    measured = run("measure", "--model", str(tmp_path / "net.onnx"), "--no-reference", *FAST_CLI, "--out", str(out),
                   timeout=300)  # fmt: skip
    assert measured.returncode == 0, measured.stderr
    assert measured.stdout.strip() == str(out) and "1 model(s), 1 measured now" in measured.stderr
