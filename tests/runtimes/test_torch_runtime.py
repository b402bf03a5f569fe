"""The torch runtime rebuilds the exact network from its spec, refuses a different one, and times like CUDA would."""

from __future__ import annotations

import json
from typing import ClassVar

import numpy as np
import pytest
import torch

from latbench.agents.runtimes.torch import DeviceSync, HostEvent, TorchRuntime
from latbench.errors import ArtifactError, RuntimeUnavailable
from latbench.spaces.builders import build_model
from tests.runtimes.runtime_helpers import Built, built_fixture, sample_input  # noqa: F401  (built_fixture: the fixture)


@pytest.mark.parametrize("space", ["nb201", "fbnet"])
def test_rebuilds_the_network_the_spec_names(built: Built, space: str) -> None:
    artifact = built.get(space, "torch.json")
    x = sample_input(artifact.key)
    with TorchRuntime(threads=1) as rt:
        rt.load(artifact.path)
        got = rt.infer(x)
    with torch.no_grad():
        expected = build_model(space, artifact.key.arch, classes=artifact.key.classes).eval()(torch.from_numpy(x))
    np.testing.assert_allclose(got, expected.numpy(), rtol=0, atol=1e-6)


def test_a_spec_whose_weights_differ_here_is_refused(built: Built, tmp_path) -> None:
    spec = json.loads(built.get("nb201", "torch.json").path.read_text())
    spec["seed"] = 1  # as if this machine's torch initialised other weights
    (tmp_path / "other.torch.json").write_text(json.dumps(spec))
    with pytest.raises(ArtifactError, match="weights are not the same here"):
        TorchRuntime().load(tmp_path / "other.torch.json")
    spec["builder_version"] = "0"
    (tmp_path / "old.torch.json").write_text(json.dumps(spec))
    with pytest.raises(ArtifactError, match="builder version 0"):
        TorchRuntime().load(tmp_path / "old.torch.json")
    (tmp_path / "junk.torch.json").write_text("{}")
    with pytest.raises(ArtifactError, match="not a latbench torch spec"):
        TorchRuntime().load(tmp_path / "junk.torch.json")


class Recording(HostEvent):
    """A host event that logs the calls the runtime makes on it."""

    log: ClassVar[list[str]] = []

    def record(self) -> None:
        self.log.append("record")

    def synchronize(self) -> None:
        self.log.append("synchronize")


def test_timed_runs_wait_for_the_device(built: Built) -> None:
    Recording.log = []
    with TorchRuntime(threads=1) as rt:
        rt.load(built.get("nb201", "torch.json").path)
        rt.sync = DeviceSync(Recording)
        for _ in range(3):
            rt.run()
    assert Recording.log == ["record", "synchronize"] * 3


def test_device_sync_waits_for_the_device_after_the_call() -> None:
    Recording.log = []
    sync = DeviceSync(Recording)
    sync(lambda: Recording.log.append("call"))
    assert Recording.log == ["call", "record", "synchronize"]


def test_cuda_without_a_gpu_says_so() -> None:
    assert not torch.cuda.is_available()
    with pytest.raises(RuntimeUnavailable, match="torch provider 'cuda': no CUDA device"):
        TorchRuntime(provider="cuda")
    assert TorchRuntime.providers() == ["cpu", "cpu-compile"]
    assert set(TorchRuntime.unavailable_providers()) == {"cuda", "cuda-compile"}
    with pytest.raises(RuntimeUnavailable, match="choose one of"):
        TorchRuntime(provider="mps")


def test_compile_is_an_option_recorded_with_the_result() -> None:
    assert TorchRuntime(provider="cpu-compile").settings()["compile"] is True
    assert TorchRuntime(provider="cpu", compile=True).settings() == {
        "threads": 1,
        "provider": "cpu",
        "compile": True,
        "device": "cpu",
    }
