"""The predictor commands' contract: bad option values are usage errors (exit 2) refused before any work, with
the choices taken from the code's registries; ``--json`` is strict JSON; ``--archs-file`` is read one way; and a
transfer that is no better than chance, or smaller than asked, says so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer.main
from typer.testing import CliRunner

from latbench import datasets
from latbench.cli import app
from latbench.predictor import METHODS, Predictor, load_pretrained, out_of_fold
from latbench.predictor.samplers import EVAL_SAMPLERS, SAMPLERS

runner = CliRunner()
ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


@pytest.fixture(autouse=True)
def own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LATBENCH_HOME", str(tmp_path / "home"))


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args))


def strict(text: str) -> Any:
    """``text`` parsed as JSON that refuses ``NaN`` and ``Infinity``, as jq and JavaScript do."""

    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize(
    "args",
    [
        ["predictor", "pretrain", "-s", "nb201", "--devices", "pixel2", "--method", "cost-topp", "-o", "x.pt"],
        ["predictor", "transfer", "-m", "shipped:nb201", "-d", "x", "--dataset", "help-nb201", "--method", "foo",
         "-o", "x.pt"],
        ["predictor", "transfer", "-m", "shipped:nb201", "-d", "x", "--dataset", "help-nb201", "--sampler", "encodingg",
         "-o", "x.pt"],
        ["predictor", "transfer", "-m", "shipped:nb201", "-d", "x", "--dataset", "help-nb201", "--folds", "1",
         "-o", "x.pt"],
        ["predictor", "transfer", "-m", "shipped:nb201", "-d", "x", "--results", "r.csv", "--samples", "5",
         "-o", "x.pt"],
        ["predictor", "transfer", "-m", "shipped:nb201", "-d", "x", "--results", "r.csv", "--sampler", "random",
         "-o", "x.pt"],
        ["predictor", "transfer", "-m", "shipped:nb201", "-d", "x", "--dataset", "help-nb201", "--include-unstable",
         "-o", "x.pt"],
        ["predictor", "eval", "--task", "FD", "--method", "foo"],
        ["predictor", "eval", "--task", "FD", "--sampler", "foo"],
        ["predictor", "eval", "--task", "FD", "--level", "2", "--folds", "5"],
        ["predictor", "eval", "--task", "FD", "--level", "0.8"],  # the intervals need --folds
        ["predictor", "suggest", "-s", "nb201", "--sampler", "adaptive"],
        ["predict", "-m", "missing.pt", "-a", ARCH, "--level", "0"],
        ["predict", "-m", "missing.pt", "-a", ARCH, "--level", "1.5"],
    ],
)  # fmt: skip
def test_bad_option_values_are_usage_errors_refused_before_any_work(args: list[str]) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert "Invalid value" in result.output
    assert "pretraining" not in result.output and "transferring" not in result.output


def option_help(*path: str, option: str) -> str:
    command: Any = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    (param,) = [p for p in command.params if option in p.opts]
    return str(param.help)


@pytest.mark.parametrize("command", ["pretrain", "transfer", "eval"])
def test_method_help_names_every_method_of_the_registry(command: str) -> None:
    text = option_help("predictor", command, option="--method")
    assert all(method in text for method in METHODS), text


def test_sampler_helps_name_their_registries_and_say_why_the_defaults_differ() -> None:
    transfer = option_help("predictor", "transfer", option="--sampler")
    suggest = option_help("predictor", "suggest", option="--sampler")
    assert all(s in transfer and s in suggest for s in SAMPLERS)
    assert all(s in option_help("predictor", "eval", option="--sampler") for s in EVAL_SAMPLERS)
    assert "eval's" in transfer and "suggest's encoding" in transfer


def test_predict_all_help_describes_each_space_not_only_nb201() -> None:
    text = option_help("predict", option="--all")
    assert "FBNet" in text and "plugin" in text and "(all of NB201)" not in text


@pytest.fixture(scope="module")
def eight_samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model transferred from 8 samples (pixel3's, made noisy so they are no source's own): too few out-of-fold
    pairs for a bounded 90% interval."""
    nb = datasets.load("help-nb201")
    rng = np.random.default_rng(0)
    rows = rng.choice(len(nb.archs), 8, replace=False)
    latency = nb.vector("pixel3")[rows] * rng.uniform(0.9, 1.1, 8)
    model = out_of_fold.transfer_and_validate(
        load_pretrained("nb201"), "noisy", [nb.archs[i] for i in rows], latency, method="ridge"
    )
    return model.save(tmp_path_factory.mktemp("model") / "eight.pt")


def test_predict_json_writes_an_unbounded_end_as_null(eight_samples: Path) -> None:
    assert not np.isfinite(Predictor.load(eight_samples).interval_halfwidth(0.9))
    result = invoke("predict", "-m", str(eight_samples), "-a", ARCH, "--json")
    assert result.exit_code == 0, result.output
    payload = strict(result.stdout)
    low, high = payload["intervals"][ARCH]
    assert high is None and 0 <= low < payload["predictions"][ARCH]


def test_the_transfer_report_is_strict_json_with_its_unbounded_factor_null(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    result = invoke("predictor", "transfer", "-m", "shipped:nb201", "-d", "pixel3", "--dataset", "help-nb201",
                    "-n", "8", "--method", "ridge", "-o", str(tmp_path / "m.pt"), "--report", str(report))  # fmt: skip
    assert result.exit_code == 0, result.output
    written = strict(report.read_text())
    assert written["interval_factor"] is None and "pixel3's own latencies" in written["caveat"]


def test_an_archs_file_skips_comments_and_blank_lines(eight_samples: Path, tmp_path: Path) -> None:
    listed = tmp_path / "archs.txt"
    listed.write_text(f"# candidates of the week\n\n  {ARCH}  \n# {ARCH}\n")
    result = invoke("predict", "-m", str(eight_samples), "--archs-file", str(listed))
    assert result.exit_code == 0, result.output
    (line,) = result.stdout.splitlines()
    assert line.startswith(f"{ARCH}\t")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "lists no architecture"),
        ("# only a note\n\n", "lists no architecture"),
        (f"{ARCH}\n\n|nor_conv_3x3~0|+|bogus|\n", "archs.txt:3: "),
    ],
)
def test_an_archs_file_that_lists_nothing_or_a_bad_line_is_a_usage_error(
    eight_samples: Path, tmp_path: Path, text: str, message: str
) -> None:
    listed = tmp_path / "archs.txt"
    listed.write_text(text)
    result = invoke("predict", "-m", str(eight_samples), "--archs-file", str(listed))
    assert result.exit_code == 2 and result.stdout == ""
    assert message in " ".join(result.output.split())


def test_a_transfer_from_fewer_samples_than_asked_and_no_better_than_chance_warns(tmp_path: Path) -> None:
    nb = datasets.load("help-nb201")
    rng = np.random.default_rng(3)
    table = tmp_path / "noise.csv"
    picks, values = rng.choice(15_625, 10, replace=False), rng.uniform(1, 2, 10).tolist()
    rows = [f"{nb.archs[i]},mydev,{v!r}" for i, v in zip(picks, values)]
    table.write_text("arch,device,latency_ms\n" + "\n".join(rows) + "\n")
    assert invoke("dataset", "import", str(table), "-s", "nb201", "--name", "noise").exit_code == 0
    result = invoke("predictor", "transfer", "-m", "shipped:nb201", "-d", "mydev", "--dataset", "noise",
                    "--method", "ridge", "-o", str(tmp_path / "m.pt"))  # fmt: skip
    assert result.exit_code == 0, result.output
    text = " ".join(result.stderr.split())
    assert "holds 10 measurement(s) of mydev, fewer than the 20 asked: using all 10" in text
    assert "is no better than chance" in text
