"""``encodings compute --archs-file`` without ``--out`` extends the table ``load`` reads instead of shadowing
the shipped one with a few rows; with ``--out`` the file holds the listed architectures alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from latbench import datasets
from latbench.cli.encodings import encodings_app
from latbench.predictor.encodings import EncodingsError, load
from latbench.predictor.encodings.compute import compute
from latbench.predictor.encodings.store import shipped_path, user_dir
from latbench.spaces import get_space

runner = CliRunner()


@pytest.fixture(autouse=True)
def own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LATBENCH_HOME", str(tmp_path / "home"))


def test_listed_archs_the_shipped_table_holds_leave_it_as_the_one_loaded(tmp_path: Path) -> None:
    listed = tmp_path / "archs.txt"
    listed.write_text("# three cells\n" + "\n".join(datasets.load("help-nb201").archs[:3]) + "\n")
    result = runner.invoke(encodings_app, ["compute", "--space", "nb201", "--kind", "zcp", "--archs-file", str(listed)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(shipped_path("nb201", "zcp"))
    assert not (user_dir() / "nb201-zcp.npz").exists() and len(load("nb201", "zcp").archs) == 15_625


def test_listed_archs_the_table_lacks_are_added_to_its_rows() -> None:
    fbnet = datasets.load("help-fbnet")
    shipped = load("fbnet", "zcp")
    (new,) = [a for a in get_space("fbnet").sample(5, seed=3) if a not in set(shipped.archs)][:1]
    path = compute("fbnet", "zcp", archs=[fbnet.archs[0], new])
    assert path == user_dir() / "fbnet-zcp.npz"
    extended = load("fbnet", "zcp")
    assert extended.archs == (*shipped.archs, get_space("fbnet").canonical(new))
    assert np.array_equal(extended.values[: len(shipped.archs)], shipped.values)


def test_an_arch2vec_table_or_another_seed_is_not_extended_and_out_is_suggested() -> None:
    shipped = set(load("fbnet", "arch2vec").archs)
    (new,) = [a for a in get_space("fbnet").sample(5, seed=3) if a not in shipped][:1]
    with pytest.raises(EncodingsError, match=r"another encoder.*--out DIR"):
        compute("fbnet", "arch2vec", archs=[new])
    with pytest.raises(EncodingsError, match=r"seed 0, not 7.*--seed 0"):
        compute("fbnet", "zcp", archs=[new], seed=7)
    assert not user_dir().exists() or not any(user_dir().iterdir())
