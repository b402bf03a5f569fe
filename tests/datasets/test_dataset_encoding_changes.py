"""A plugin space that changes how it encodes architectures after a dataset of it was stored.

Datasets store a plugin's architectures as codes (indices into ``archs()``, or genome matrices) that the plugin
installed at load time decodes. The plugin here is a real distribution on ``PYTHONPATH`` of real ``latbench``
processes; between the import and the load its source is edited the way an author edits theirs (reordered
``archs()``, reordered operations, ``archs()`` added or removed). A load either reads the very architectures the
dataset was built with, or refuses with one line saying the encoding changed and how to rebuild; never other
architectures, never an internal error.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

import pytest

from tests.datasets.dataset_helpers import cli

pytestmark = pytest.mark.slow  # real latbench processes with a plugin installed and reinstalled

PLUGIN = """
import itertools
import numpy as np
from latbench.spaces.base import ArchGraph, Costs, SearchSpace

OPS = {ops!r}
LISTED = {listed!r}


class Chain(SearchSpace):
    name = "chain"
    vocabulary = ("input", "conv", "pool", "skip", "output")
    default_resolution = 8
    default_classes = 10

    @property
    def genes(self):
        return (len(OPS),) * 3

    def to_genes(self, arch):
        return tuple(OPS.index(op) for op in arch.split("-"))

    def from_genes(self, genes):
        return "-".join(OPS[g] for g in genes)

    def canonical(self, arch):
        return self.from_genes(self.to_genes(arch))

    def _every(self):
        return [self.from_genes(g) for g in itertools.product(range(len(OPS)), repeat=3)]

    def archs(self):
        if LISTED is None:
            return None
        return self._every() if LISTED == "forward" else self._every()[::-1]

    def sample(self, n, seed=0, connected_only=False):
        every = self._every()
        return [every[i] for i in np.random.default_rng(seed).choice(len(every), size=n, replace=False)]

    def encode(self, arch):
        ops = np.array([0, *(self.vocabulary.index(p) for p in arch.split("-")), 4], dtype=np.int64)
        return ArchGraph(ops=ops, adjacency=np.eye(5, k=1, dtype=np.uint8), vocabulary=self.vocabulary)

    def costs(self, arch, resolution=None, classes=None):
        return Costs(macs=1, params=1)

    def validate_resolution(self, resolution):
        pass
"""
LATENCY = {"conv-pool-skip": 1.5, "skip-skip-conv": 0.25, "pool-conv-conv": 2.75, "conv-conv-conv": 4.0}


def write_plugin(root: Path, ops: tuple[str, ...] = ("conv", "pool", "skip"), listed: str | None = None) -> None:
    """The plugin's module as its author has it now (a fresh process imports it anew)."""
    (root / "latbench_chain.py").write_text(PLUGIN.format(ops=ops, listed=listed))


@pytest.fixture
def plugin(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``latbench-chain`` installed as a distribution (a ``.dist-info`` with its entry point) on ``PYTHONPATH``."""
    root = tmp_path / "site"
    info = root / "latbench_chain-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: latbench-chain\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[latbench.spaces]\nchain = latbench_chain:Chain\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(root), *sys.path]))
    return root


def imported(tmp_path: Path, name: str) -> None:
    """A dataset of the plugin imported from a real table: one device, the four architectures of ``LATENCY``."""
    table = tmp_path / f"{name}.csv"
    with table.open("w", newline="") as f:
        csv.writer(f).writerows([("arch", "device", "latency_ms"), *((a, "pi", v) for a, v in LATENCY.items())])
    done = cli("dataset", "import", str(table), "--space", "chain", "--name", name)
    assert done.returncode == 0, done.stderr


def shown(name: str) -> dict[str, float]:
    """The dataset as a fresh process reads it, by architecture (the export's long table)."""
    out = Path(os.environ["LATBENCH_HOME"]) / f"{name}.csv"
    done = cli("dataset", "export", name, "--format", "csv", "--out", str(out))
    assert done.returncode == 0, done.stderr
    with out.open(newline="") as f:
        return {row["arch"]: float(row["latency_ms"]) for row in csv.DictReader(f)}


def refused(name: str) -> str:
    """The one line a refused load prints (``show`` and ``export`` alike)."""
    for args in (("dataset", "show", name), ("dataset", "export", name, "--format", "csv", "--out", "x.csv")):
        done = cli(*args)
        assert done.returncode == 1 and done.stdout == "", (done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "internal error" not in done.stderr and "Traceback" not in done.stderr, lines
    return lines[0]


def test_the_card_records_how_the_architectures_were_encoded(plugin: Path, tmp_path: Path) -> None:
    write_plugin(plugin, listed="forward")
    imported(tmp_path, "listed")
    assert shown("listed") == LATENCY
    write_plugin(plugin)
    imported(tmp_path, "genomes")
    assert shown("genomes") == LATENCY
    home = Path(os.environ["LATBENCH_HOME"]) / "datasets"
    listed, genomes = (json.loads((home / n / "card.json").read_text()) for n in ("listed", "genomes"))
    assert (listed["archs_encoding"], genomes["archs_encoding"]) == ("index", "genes")
    assert listed["archs_sha256"] != genomes["archs_sha256"]  # index order vs first-appearance order


def test_a_reordered_archs_list_is_refused_not_remapped(plugin: Path, tmp_path: Path) -> None:
    write_plugin(plugin, listed="forward")
    imported(tmp_path, "mine")
    write_plugin(plugin, listed="reversed")
    line = refused("mine")
    assert line.startswith("error: dataset 'mine' cannot be read: search space 'chain' encodes architectures")
    assert "they decode to other architectures than it was built with" in line
    assert "Reinstall the plugin version it was built with" in line
    assert "latbench dataset import mine.csv --space chain --name mine --force" in line
    write_plugin(plugin, listed="forward")
    assert shown("mine") == LATENCY


def test_reordered_operations_are_refused_not_remapped(plugin: Path, tmp_path: Path) -> None:
    write_plugin(plugin)
    imported(tmp_path, "mine")
    write_plugin(plugin, ops=("skip", "conv", "pool"))
    assert "they decode to other architectures than it was built with" in refused("mine")
    write_plugin(plugin, ops=("conv", "pool"))  # a choice removed: the stored genomes name one it lacks now
    assert "genes (2, 2, 2) do not have now" in refused("mine")


def test_archs_added_to_a_plugin_still_reads_its_genome_datasets(plugin: Path, tmp_path: Path) -> None:
    """Adding ``archs()`` changes how new datasets are stored, not what old genomes decode to."""
    write_plugin(plugin)
    imported(tmp_path, "mine")
    write_plugin(plugin, listed="reversed")
    assert shown("mine") == LATENCY
    write_plugin(plugin, ops=("pool", "conv", "skip"), listed="forward")
    assert "they decode to other architectures" in refused("mine")


def test_archs_removed_from_a_plugin_is_refused(plugin: Path, tmp_path: Path) -> None:
    write_plugin(plugin, listed="forward")
    imported(tmp_path, "mine")
    write_plugin(plugin)
    assert "indices into its archs(), which lists no members now" in refused("mine")


def test_a_dataset_written_before_the_fingerprint_is_checked_by_its_content_hash(plugin: Path, tmp_path: Path) -> None:
    write_plugin(plugin, listed="forward")
    imported(tmp_path, "old")
    card_path = Path(os.environ["LATBENCH_HOME"]) / "datasets" / "old" / "card.json"
    card = json.loads(card_path.read_text())
    del card["archs_encoding"], card["archs_sha256"]  # as a latbench before the fingerprint wrote it
    card_path.write_text(json.dumps(card))
    assert shown("old") == LATENCY
    write_plugin(plugin, listed="reversed")
    assert "no longer match the content hash on its card" in refused("old")
