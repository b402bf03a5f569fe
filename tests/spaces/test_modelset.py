"""The model set: model files where a space's architectures stand, found by ``get_space`` but never offered."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import pytest
from pydantic import ValidationError

from latbench.errors import InvalidArchitecture, LatbenchError
from latbench.protocol import CampaignCreate, JobSpec, MeasurementSettings, ModelRef, ResultItem
from latbench.spaces import MODEL_SET, get_space, space_names

SHA = "ab" * 32


def test_the_model_set_is_found_by_name_but_not_listed_as_a_space():
    models = get_space("Model")
    assert models.name == MODEL_SET and MODEL_SET not in space_names()
    assert models.canonical("bert-base.onnx") == "bert-base.onnx"
    assert models.official_index("bert-base.onnx") is None and models.archs() is None
    with pytest.raises(InvalidArchitecture):
        models.canonical(" padded.onnx")
    with pytest.raises(LatbenchError, match="model files have no sampler"):
        models.sample(3)
    with pytest.raises(LatbenchError, match="model files have no graph encoding"):
        models.encode("bert-base.onnx")


def test_a_campaign_of_models_is_of_the_model_set_and_names_each_model_once():
    spec = CampaignCreate(models=[ModelRef(name="a.onnx", sha256=SHA, input_shapes={"ids": [1, 128]})])
    assert spec.space == MODEL_SET and spec.samples is None and spec.archs is None
    with pytest.raises(ValidationError, match=r"two models are named 'a\.onnx'"):
        CampaignCreate(models=[ModelRef(name="a.onnx", sha256=SHA), ModelRef(name="a.onnx", sha256="cd" * 32)])
    with pytest.raises(ValidationError, match="models are measured as space 'model', not 'nb201'"):
        CampaignCreate(space="nb201", models=[ModelRef(name="a.onnx", sha256=SHA)])
    with pytest.raises(ValidationError, match="not samples or archs"):
        CampaignCreate(space="model", samples=3)
    with pytest.raises(ValidationError, match="give input_shapes, not batch, resolution or classes"):
        CampaignCreate(models=[ModelRef(name="a.onnx", sha256=SHA)], resolution=224)
    with pytest.raises(ValidationError, match="input_shapes"):
        ModelRef(name="a.onnx", sha256=SHA, input_shapes={"ids": [0, 128]})


def test_messages_about_architectures_leave_the_model_file_fields_out():
    """Agents and collectors from before model files refuse unknown fields, so an architecture's result and job
    must serialise as they did; a model file's carry their shapes."""
    result = ResultItem(result_id=uuid.uuid4(), job_id="j", lease_id="l", error="boom", measured_at=datetime.now())
    assert "input_shapes" not in json.loads(result.model_dump_json())
    timed = result.model_copy(update={"input_shapes": "ids:1x128"})
    assert ResultItem.model_validate_json(timed.model_dump_json()).input_shapes == "ids:1x128"
    job = JobSpec(job_id="j", lease_id="l", campaign_id="c", space="nb201", arch="a", arch_index=None,
                  runtime="onnxruntime", provider="cpu", batch=1, threads=1, resolution=32, classes=10, opset=17,
                  artifact_sha256=SHA, artifact_bytes=1, reference_sha256=None, settings=MeasurementSettings(),
                  attempt=1, expires_at=datetime.now())  # fmt: skip
    assert "input_shapes" not in json.loads(job.model_dump_json())
    model_job = job.model_copy(update={"space": MODEL_SET, "input_shapes": {"ids": [1, 128]}})
    assert JobSpec.model_validate_json(model_job.model_dump_json()).input_shapes == {"ids": [1, 128]}
