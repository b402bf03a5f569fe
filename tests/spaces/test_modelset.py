"""The model set: model files where a space's architectures stand, found by ``get_space`` but never offered."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from latbench.errors import InvalidArchitecture, LatbenchError
from latbench.protocol import CampaignCreate, ModelRef
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
