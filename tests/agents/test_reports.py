"""What an agent reports of a job it could not measure, with the real runtime's own error."""

from __future__ import annotations

from pathlib import Path

import pytest

from latbench.agents.reports import error_item
from latbench.agents.runtimes.onnxruntime import OnnxRuntime
from latbench.errors import ModelInputError
from latbench.hashing import sha256_file
from latbench.spaces import MODEL_SET
from tests.agents.factories import job
from tests.support.modelfiles import transformer_onnx


def test_a_model_jobs_error_names_the_users_file_not_the_download(tmp_path: Path) -> None:
    made = transformer_onnx(tmp_path / "bert.onnx")
    sha256 = sha256_file(made)
    downloaded = made.rename(tmp_path / f"{sha256}.onnx")  # the agent keeps downloads by content hash
    with OnnxRuntime() as rt, pytest.raises(ModelInputError) as info:
        rt.load(downloaded)
    model_job = job("j", sha256).model_copy(update={"space": MODEL_SET, "arch": "bert.onnx"})
    item = error_item(model_job, str(info.value), info.value.final)
    assert item.error == (
        "model bert.onnx: input 'input_ids' has a dynamic dimension 1 ('sequence'); "
        "give its shape with --input input_ids:1xN"
    )
    assert item.final is True
    architecture = error_item(job("k", sha256), str(info.value))  # an architecture's artifact keeps its name
    assert architecture.error == str(info.value)


def test_a_model_the_runtime_cannot_load_is_named_not_its_download_path(tmp_path: Path) -> None:
    """onnxruntime's own refusal names the path it loaded: the agent's cache file, which told a campaign's user
    nothing of which of their files failed."""
    broken = tmp_path / "custom.onnx"
    broken.write_bytes(transformer_onnx(tmp_path / "ok.onnx").read_bytes()[:200])  # cut short
    sha256 = sha256_file(broken)
    (tmp_path / "artifacts").mkdir()
    downloaded = broken.rename(tmp_path / "artifacts" / f"{sha256}.onnx")
    with OnnxRuntime() as rt, pytest.raises(Exception) as info:
        rt.load(downloaded)
    assert str(downloaded) in str(info.value) or sha256 in str(info.value)
    item = error_item(job("j", sha256).model_copy(update={"space": MODEL_SET, "arch": "custom.onnx"}), str(info.value))
    assert item.error is not None
    assert sha256 not in item.error and str(tmp_path) not in item.error
    assert item.error.startswith("onnxruntime cannot load custom.onnx: ")
