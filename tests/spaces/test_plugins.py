"""A third-party space installed as a real distribution runs through the generic machinery.

The fixture writes ``latbench_toy`` (tests/spaces/toy_plugin) beside a ``.dist-info`` whose ``entry_points.txt``
registers it in the ``latbench.spaces`` group, and puts that directory on ``sys.path``: ``importlib.metadata``
finds it exactly as it finds a pip-installed package. The slow tests put it on ``PYTHONPATH`` too and run it end
to end as a user would: measured on this machine, measured by a collector and an agent, built into a dataset and
predicted by a predictor transferred to the agent's device.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import latbench.spaces
from latbench.datasets import space_archs
from latbench.datasets.errors import DatasetError
from latbench.datasets.storage import decode_archs, encode_archs
from latbench.errors import UnknownSpace
from latbench.predictor.encodings import load as load_encodings
from latbench.predictor.encodings.errors import EncodingsUnavailable
from latbench.predictor.errors import PredictorError
from latbench.predictor.features import codes, cost_feature_names, cost_features, graph_batch
from latbench.predictor.reference import reference_archs
from latbench.protocol import CampaignCreate
from latbench.search import genome_of, search
from latbench.spaces import get_space, registrations, space_names
from tests.support.ports import free_port
from tests.support.processes import LATBENCH, Agent, Collector, env, totals, wait_for

PLUGIN_SOURCE = Path(__file__).parent / "toy_plugin" / "latbench_toy"
FAST = ["--min-runs", "10", "--min-time", "0.05", "--warmup-time", "0.02", "--attempts", "1"]
"""Short timings, measured once however unstable: on a busy machine re-measuring tripled each job's time, and
these tests are about the fleet, not the stability checks (tests/agents/test_measure.py)."""


def install(root: Path, dist: str, entry_points: str) -> Path:
    """A directory holding ``latbench_toy`` and a ``dist``.dist-info registering ``entry_points``."""
    shutil.copytree(PLUGIN_SOURCE, root / "latbench_toy")
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[latbench.spaces]\n{entry_points}\n")
    return root


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = install(tmp_path / "site", "latbench-toy", "toy = latbench_toy:Toy")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setattr(latbench.spaces, "_LOADED", dict(latbench.spaces._LOADED))
    yield root
    for module in [m for m in sys.modules if m.split(".")[0] == "latbench_toy"]:
        del sys.modules[module]


def test_the_plugin_registers_by_entry_point(plugin: Path) -> None:
    assert space_names()[:2] == ["nb201", "fbnet"] and "toy" in space_names()
    assert registrations()["toy"].origin == "latbench-toy"
    toy = get_space("TOY")
    assert toy is get_space("toy") and toy.genes == (3, 3, 2)
    assert CampaignCreate(space="Toy", samples=3).space == "toy"


@pytest.mark.slow
def test_spaces_list_shows_the_plugin(plugin: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin), *sys.path])}
    result = subprocess.run(
        [sys.executable, "-m", "latbench", "spaces", "list", "--json"], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    listed = {s["name"]: s for s in json.loads(result.stdout)}
    assert list(listed)[:2] == ["nb201", "fbnet"]
    toy = listed["toy"]
    assert (toy["origin"], toy["genes"], toy["default_resolution"]) == ("latbench-toy", 3, 16)
    assert toy["builder_available"] and toy["builder"] == "latbench_toy.build:build"
    table = subprocess.run(
        [sys.executable, "-m", "latbench", "spaces", "list"], capture_output=True, text=True, env=env
    )
    assert "toy" in table.stdout and "latbench-toy" in table.stdout


def test_predictor_features_of_the_plugin(plugin: Path) -> None:
    toy = get_space("toy")
    archs = toy.sample(18, seed=1)
    genomes = codes("toy", archs)
    assert genomes.shape == (18, 3) and toy.from_genes_many(genomes) == archs
    batch = graph_batch("toy", genomes)
    assert batch.ops.shape == (18, 5) and batch.adjacency.shape == (5, 5) and batch.vocabulary_size == 5
    assert np.array_equal(batch.ops[0], toy.encode(archs[0]).ops)
    assert cost_feature_names("toy") == ["log_macs", "log_params"]
    features = cost_features("toy", genomes)
    expected = [[np.log(toy.costs(a).macs), np.log(toy.costs(a).params)] for a in archs]
    assert np.allclose(features, expected)
    assert len({tuple(f) for f in features}) > 1


def test_search_over_the_plugin(plugin: Path) -> None:
    toy = get_space("toy")
    genome = genome_of("toy")
    rng = np.random.default_rng(0)
    parents = genome.random(rng, 100)
    assert np.all(parents < genome.choices) and set(parents[:, 2]) == {0, 1}
    children = genome.mutate(parents, rng)
    assert np.all((children != parents).sum(axis=1) == 1) and np.all(children < genome.choices)
    assert np.array_equal(genome.encode(genome.decode(parents)), parents)

    def latency(archs):
        return np.array([toy.costs(a).macs / 1e5 for a in archs])

    limit = float(np.median(latency(toy.sample(18))))
    result = search(latency, "toy", limit, budget=60, finalists=3, seed=0)
    assert result.finalists and all(latency([c.arch])[0] <= limit for c in result.finalists)


def test_datasets_store_the_plugin_as_genomes(plugin: Path) -> None:
    archs = tuple(get_space("toy").sample(10, seed=2))
    stored = encode_archs("toy", archs)
    assert stored.dtype == np.uint8 and stored.shape == (10, 3)
    assert decode_archs("toy", stored) == archs


def test_resources_latbench_lacks_for_the_plugin_say_so(plugin: Path) -> None:
    with pytest.raises(DatasetError, match=r"does not list its members .* no built-in dataset of it"):
        space_archs("toy")
    with pytest.raises(PredictorError, match="no reference architectures for search space 'toy'"):
        reference_archs("toy")
    with pytest.raises(EncodingsUnavailable, match=r"no toy zcp encodings .* --kind zcp --archs-file FILE"):
        load_encodings("toy", "zcp")


def test_suggest_picks_from_the_plugins_own_samples(plugin: Path) -> None:
    """A space that lists no members and has no dataset: its seeded samples stand for it (all 18 of the toy's)."""
    from latbench.predictor.samplers import candidate_archs, suggest

    assert sorted(candidate_archs("toy")) == sorted(get_space("toy").sample(18, seed=0))
    for sampler in ("random", "encoding"):
        picked = suggest("toy", 5, sampler, seed=1)
        assert len(set(picked)) == 5 and set(picked) <= set(candidate_archs("toy"))


def test_zero_cost_proxies_of_the_plugin_are_computed_on_the_fly_or_for_a_given_list(
    plugin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("torch")
    from latbench.predictor.encodings.compute import compute
    from latbench.search.objectives import objective

    monkeypatch.setenv("LATBENCH_HOME", str(tmp_path / "home"))
    archs = get_space("toy").sample(3, seed=4)
    scores = objective("toy", "proxy", "nwot")(archs)  # no table: computed as asked
    assert scores.shape == (3,) and np.isfinite(scores).all()
    path = compute("toy", "zcp", tmp_path / "enc", archs=archs[:2])
    table = load_encodings("toy", "zcp", path=path)
    assert table.archs == tuple(archs[:2])
    assert np.allclose(table.lookup(archs)[:, list(table.names).index("nwot")], scores)


def test_the_plugin_builds(plugin: Path) -> None:
    torch = pytest.importorskip("torch")
    from latbench.spaces.builders import build_model

    toy = get_space("toy")
    model = build_model("toy", "conv3x3-skip-conv1x1", classes=4, seed=0)
    x = torch.zeros(2, 3, toy.input_resolution("conv3x3-skip-conv1x1"), toy.input_resolution("conv3x3-skip-conv1x1"))
    assert model(x).shape == (2, 4)
    params = sum(p.numel() for p in model.parameters())
    assert params == toy.costs("conv3x3-skip-conv1x1", classes=4).params


@pytest.mark.slow  # exports two networks
def test_a_plugin_builder_version_bump_builds_anew(
    plugin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from latbench.artifacts import OPSET, ArtifactCache, ArtifactKey

    toy = get_space("toy")
    arch, size, classes = "conv3x3-skip-conv1x1", toy.default_resolution, toy.default_classes
    key = ArtifactKey(space="toy", arch=arch, batch=1, resolution=size, classes=classes, opset=OPSET, seed=0)
    cache = ArtifactCache(tmp_path / "cache")
    old = cache.build(key)
    assert toy.builder_version == "" and cache.build(key) == old  # no bump: the file is reused

    monkeypatch.setattr(type(toy), "builder_version", "2")
    assert cache.get(key) is None  # the old builder's file no longer answers for the key
    new = cache.build(key)
    assert new.path != old.path and new.path.stem == key.digest() != old.path.stem
    assert old.path.exists()  # left for a latbench that still runs the old plugin
    monkeypatch.setattr(type(toy), "builder_version", "")
    assert key.digest() == old.path.stem


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("toy = latbench_toy:LAYER_OPS", "is not a latbench SearchSpace subclass"),
        ("other = latbench_toy:Toy", "calls itself 'toy'; its name must be 'other'"),
        ("toy = latbench_toy.missing:Toy", "cannot load search space 'toy'"),
    ],
)
def test_a_broken_plugin_is_a_one_line_error(
    entry: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = install(tmp_path / "site", "latbench-broken", entry)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setattr(latbench.spaces, "_LOADED", dict(latbench.spaces._LOADED))
    name = entry.split(" = ")[0]
    with pytest.raises(UnknownSpace, match=message) as raised:
        get_space(name)
    assert "\n" not in str(raised.value)
    for module in [m for m in sys.modules if m.split(".")[0] == "latbench_toy"]:
        del sys.modules[module]


def test_a_plugin_cannot_replace_a_builtin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = install(tmp_path / "site", "latbench-shadow", "nb201 = latbench_toy:Toy")
    monkeypatch.syspath_prepend(str(root))
    assert registrations()["nb201"].origin == "latbench (built-in)"
    assert get_space("nb201").genes == (5,) * 6
    # and is told so: `spaces list` warns of the entry point it passes over
    assert [(r.name, r.origin) for r in latbench.spaces.shadowed()] == [("nb201", "latbench-shadow")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(root), *sys.path]))
    listed = subprocess.run([*LATBENCH, "spaces", "list"], capture_output=True, text=True, env=env(), timeout=120)
    assert listed.returncode == 0 and "latbench-shadow registers search space 'nb201'" in listed.stderr


def test_a_space_changed_under_a_running_process_says_to_restart_it(plugin: Path) -> None:
    """The collector keeps the plugin modules it imported; a space added to the package since is not in them."""
    get_space("toy")  # imports latbench_toy, as a running collector has
    (plugin / "latbench_toy-0.1.dist-info" / "entry_points.txt").write_text(
        "[latbench.spaces]\ntoy = latbench_toy:Toy\ntoy2 = latbench_toy:Toy2\n"
    )
    with pytest.raises(UnknownSpace, match="imported latbench_toy before its package changed: restart it"):
        get_space("toy2")


def test_a_plugin_builder_that_raises_is_named_in_a_one_line_error(
    plugin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("torch")
    import latbench_toy.build  # type: ignore[import-not-found]

    from latbench.errors import ArtifactError
    from latbench.spaces.builders import build_model

    def broken(arch: str, classes: int) -> None:
        raise RuntimeError(f"my builder is broken for {arch}")

    monkeypatch.setattr(latbench_toy.build, "build", broken)
    with pytest.raises(ArtifactError, match=r"the builder latbench_toy\.build:build of search space 'toy' failed on "
                                            r"conv3x3-skip-conv1x1: RuntimeError: my builder is broken"):  # fmt: skip
        build_model("toy", "conv3x3-skip-conv1x1")


def test_invalid_architecture_is_importable_where_plugin_authors_look() -> None:
    from latbench.errors import InvalidArchitecture as Raised
    from latbench.spaces import InvalidArchitecture

    assert InvalidArchitecture is Raised


@pytest.fixture
def plugin_env(plugin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The plugin on ``PYTHONPATH`` of every latbench subprocess, which keep their state in a home of their own."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(plugin), *sys.path]))
    monkeypatch.setenv("LATBENCH_HOME", str(tmp_path / "home"))
    return plugin


def run_cli(*args: str) -> str:
    """Run ``latbench args`` as a user would; its stdout (it must succeed)."""
    result = subprocess.run([*LATBENCH, *args], capture_output=True, text=True, env=env(), timeout=300)
    assert result.returncode == 0, f"latbench {' '.join(args)} failed:\n{result.stderr[-3000:]}"
    return result.stdout.strip()


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow  # exports and measures three networks
def test_measure_the_plugin(plugin_env: Path, tmp_path: Path) -> None:
    toy = get_space("toy")
    out = tmp_path / "r.csv"
    assert run_cli("measure", "--space", "toy", "--samples", "3", "--out", str(out), *FAST) == str(out)
    rows = read_csv(out)
    assert sorted(r["arch"] for r in rows) == sorted(toy.sample(3, seed=0))
    assert {(r["space"], r["runtime"], r["resolution"], r["classes"]) for r in rows} == {
        ("toy", "onnxruntime", "16", "10")
    }
    assert len({r["artifact_sha256"] for r in rows}) == 3 and all(float(r["latency_ms"]) > 0 for r in rows)


def every_toy_arch() -> list[str]:
    toy = get_space("toy")
    return [toy.from_genes(g) for g in itertools.product(*map(range, toy.genes))]


def synthetic_sources(path: Path, devices: dict[str, tuple[float, float]]) -> Path:
    """Every toy architecture's latency on made-up devices: ``fixed + per_mac * MACs`` ms, within 5%."""
    toy = get_space("toy")
    rng = np.random.default_rng(0)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["arch", "device", "latency_ms"])
        for device, (fixed, per_mac) in devices.items():
            for arch in every_toy_arch():
                writer.writerow([arch, device, (fixed + per_mac * toy.costs(arch).macs) * rng.uniform(0.95, 1.05)])
    return path


@pytest.mark.slow  # a collector and an agent process measure a campaign; a predictor is pretrained and transferred
def test_a_campaign_of_the_plugin_becomes_a_dataset_and_a_transferred_predictor(
    plugin_env: Path, tmp_path: Path
) -> None:
    toy = get_space("toy")
    collector = Collector(None, tmp_path / "collector", free_port(), 30.0, tmp_path / "artifacts").start()
    try:
        token = collector.cli("token", "create", "--name", "toy")
        campaign = collector.cli("campaign", "create", "--space", "toy", "--samples", "12", "--seed", "3",
                                 "--runtime", "onnxruntime", *FAST)  # fmt: skip
        agent = Agent(collector, token, "toy-agent", tmp_path / "agent", "--max-jobs", "2")
        try:
            wait_for(lambda: totals(collector.status(campaign))["done"] == 12, 240, "12 toy results")
        finally:
            assert agent.stop() == 0, agent.log.read_text()[-3000:]
        collector.cli("results", "export", "--campaign", campaign, "--out", str(tmp_path / "campaign.csv"))
        rows = read_csv(tmp_path / "campaign.csv")
        assert sorted(r["arch"] for r in rows) == sorted(toy.sample(12, seed=3))
        assert {(r["space"], r["agent"]) for r in rows} == {("toy", "toy-agent")}
        # every result, stable or not: this test is about the plugin's path, and the machine running it is busy
        every = "--include-unstable"
        built = collector.cli("dataset", "build", "--campaign", campaign, "--name", "toy-campaign", every)
        assert built == "toy-campaign"
    finally:
        assert collector.stop() == 0, collector.log.read_text()[-3000:]
    card = json.loads(run_cli("dataset", "show", "toy-campaign", "--json"))
    assert (card["space"], card["n_archs"], len(card["devices"])) == ("toy", 12, 1)
    device = card["devices"][0]["name"]
    assert card["devices"][0]["measured"] == 12

    sources = {"cpu-a": (0.01, 1e-7), "cpu-b": (0.02, 3e-7), "gpu-c": (0.05, 2e-8)}
    run_cli("dataset", "import", str(synthetic_sources(tmp_path / "sources.csv", sources)), "--space", "toy",
            "--name", "toy-sources")  # fmt: skip
    pretrained = tmp_path / "pretrained.pt"
    run_cli("predictor", "pretrain", "--space", "toy", "--devices", ",".join(sources), "--datasets", "toy-sources",
            "--epochs", "3", "--out", str(pretrained))  # fmt: skip
    transferred, report = tmp_path / "transferred.pt", tmp_path / "report.json"
    assert run_cli("predictor", "transfer", "--model", str(pretrained), "--device", device, "--dataset",
                   "toy-campaign", "--out", str(transferred), "--report", str(report)) == str(transferred)  # fmt: skip
    assert json.loads(report.read_text())["samples"] == 12

    unmeasured = sorted(set(every_toy_arch()) - set(toy.sample(12, seed=3)))
    predicted = json.loads(run_cli("predict", "--model", str(transferred), "--json",
                                   *[f"--arch={a}" for a in unmeasured]))  # fmt: skip
    assert predicted["device"] == device and list(predicted["predictions"]) == unmeasured
    measured_ms = float(np.median([float(r["latency_ms"]) for r in rows]))
    for arch, ms in predicted["predictions"].items():
        low, high = predicted["intervals"][arch]
        assert measured_ms / 3 < ms < measured_ms * 3 and low <= ms <= high
