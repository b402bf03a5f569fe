"""Management commands fail clearly: no collector, a wrong token, a bad request, bad usage; and say what they show
(an adaptive stop and its caveat)."""

from __future__ import annotations

import re
import subprocess
from datetime import datetime, timezone

import pytest
from rich.console import Console

from latbench.cli.campaign import adaptive_table
from latbench.predictor.adaptive import SHORT_OF_TARGET
from latbench.protocol import AdaptiveDevice, AdaptivePlan, CampaignStatus, LearningPoint
from tests.support.ports import free_port
from tests.support.processes import LATBENCH, Collector, env


def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LATBENCH, *args], capture_output=True, text=True, env=env(**extra), timeout=120)


@pytest.mark.slow
def test_unreachable_collector_is_one_clear_line():
    result = run("campaign", "list", "--collector", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert "cannot reach the collector" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_wrong_token_bad_request_and_usage(tmp_path, artifact_cache):
    collector = Collector(f"sqlite:///{tmp_path / 'c.sqlite'}", tmp_path / "c", free_port(), artifacts=artifact_cache)
    collector.start()
    try:
        wrong = run("token", "create", "--collector", collector.url, LATBENCH_ADMIN_TOKEN="lb_admin_wrong")
        assert wrong.returncode == 1 and "401" in wrong.stderr and "LATBENCH_ADMIN_TOKEN" in wrong.stderr
        bad_arch = run("campaign", "create", "--space", "nb201", "--arch", "|nor_conv_3x3~0|", "--runtime",
                       "onnxruntime", "--collector", collector.url)  # fmt: skip
        assert bad_arch.returncode == 1 and "422" in bad_arch.stderr and "NB201" in bad_arch.stderr
        usage = run("campaign", "create", "--space", "nb201", "--runtime", "onnxruntime", "--collector", collector.url)
        assert usage.returncode == 2
        missing = run("campaign", "status", "no-such-campaign", "--collector", collector.url)
        assert missing.returncode == 1 and "404" in missing.stderr
        assert run("campaign", "list", "--json", "--collector", collector.url).stdout.strip() == "[]"
        created = run("token", "create", "--name", "lab", "--collector", collector.url)
        assert created.returncode == 0 and created.stdout.strip().startswith("lb_enroll_")
        assert len(created.stdout.strip().splitlines()) == 1
    finally:
        assert collector.stop() == 0


@pytest.mark.slow
def test_token_limits_past_what_a_token_can_hold_are_usage_errors():
    for option, value in (("--expires-in", "1e12"), ("--max-uses", str(2**31))):
        result = run("token", "create", option, value, "--collector", f"http://127.0.0.1:{free_port()}")
        assert result.returncode == 2 and option in result.stderr, result.stderr
        assert "internal error" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_model_that_cannot_travel_alone_is_refused_before_uploading(tmp_path):
    from tests.support.modelfiles import external_data_onnx, mobilenet_onnx

    folder = tmp_path / "models"
    folder.mkdir()
    mobilenet_onnx(folder / "fine.onnx")
    external_data_onnx(folder / "big.onnx", "big.onnx.data")
    result = run("campaign", "create", "--models", str(folder), "--runtime", "onnxruntime",
                 "--collector", f"http://127.0.0.1:{free_port()}")  # fmt: skip
    assert result.returncode == 1 and "big.onnx.data" in result.stderr and "agents get one file" in result.stderr
    assert "cannot reach the collector" not in result.stderr  # refused before connecting


@pytest.mark.slow
def test_a_model_the_runtime_cannot_load_is_refused_before_uploading(tmp_path):
    """As `measure` refuses it, before anything travels (the collector refused it only after the upload)."""
    from tests.support.modelfiles import mobilenet_onnx

    model = mobilenet_onnx(tmp_path / "net.onnx")
    result = run("campaign", "create", "--models", str(model), "--runtime", "tflite",
                 "--collector", f"http://127.0.0.1:{free_port()}")  # fmt: skip
    assert result.returncode == 2, result.stderr
    said = " ".join(re.sub("[│╭╮╰╯─]", " ", result.stderr).split())  # typer's usage box, unwrapped
    assert "an ONNX file, which runtime tflite does not take; measure it with onnxruntime or tvm" in said
    assert "cannot reach the collector" not in result.stderr and "uploaded" not in result.stderr


@pytest.mark.slow
def test_the_same_file_under_two_names_is_said_before_the_campaign_measures_it_once(tmp_path):
    from tests.support.modelfiles import mobilenet_onnx

    first = mobilenet_onnx(tmp_path / "prod_v1.onnx")
    (tmp_path / "prod_v2.onnx").write_bytes(first.read_bytes())
    result = run("campaign", "create", "--models", str(tmp_path), "--runtime", "onnxruntime",
                 "--collector", f"http://127.0.0.1:{free_port()}")  # fmt: skip
    assert "prod_v2.onnx: the same file as prod_v1.onnx, measured once as prod_v1.onnx" in result.stderr


def test_the_adaptive_table_says_each_stop_and_its_caveat():
    point = LearningPoint(results=5, srcc=0.81234, srcc_std=0.0456)
    checked = [LearningPoint(results=r, srcc=0.96, srcc_std=0.01, checks=c) for r, c in ((10, 0), (15, 5), (20, 5))]
    status = CampaignStatus(
        campaign_id="c1", name=None, space="nb201", runtime="onnxruntime", provider="cpu", batch=1, threads=1,
        samples=5, created_at=datetime.now(timezone.utc), artifacts_ready=5, state="done", devices=[],
        adaptive=AdaptivePlan(target_srcc=0.95, budget=5, batch=5),
        adaptive_devices=[
            AdaptiveDevice(device="pi", state="stopped", stop="budget", curve=[point], model="pi.pt",
                           caveat=SHORT_OF_TARGET),
            AdaptiveDevice(device="gpu", state="stopped", stop="target", curve=[point, *checked], model="gpu.pt"),
        ],
    )  # fmt: skip
    console = Console(width=400, record=True)
    console.print(adaptive_table(status))
    lines = {line.split("│")[1].strip(): line for line in console.export_text().splitlines() if line.count("│") > 2}
    assert f"stopped (budget): {SHORT_OF_TARGET}" in lines["pi"] and "5: 0.812±0.046" in lines["pi"]
    assert "stopped (target)" in lines["gpu"] and "not reached" not in lines["gpu"]
    # where the verification batch's check results came in, and only there
    assert "10: 0.960±0.010, 15: 0.960±0.010 (5 checks), 20: 0.960±0.010 " in lines["gpu"]
