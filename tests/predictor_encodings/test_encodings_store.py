"""The shipped tables: complete, in dataset order, fast to load, and extended on the fly for missing archs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from latbench import datasets
from latbench.predictor import encodings
from latbench.predictor.encodings import Encodings, EncodingsError, EncodingsUnavailable
from latbench.spaces import get_space


@pytest.fixture(autouse=True)
def own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No table the user computed may stand in for the shipped ones."""
    monkeypatch.setenv("LATBENCH_HOME", str(tmp_path / "home"))


def without(table: Encodings, rows: list[int]) -> Encodings:
    keep = [i for i in range(len(table.archs)) if i not in rows]
    archs = tuple(table.archs[i] for i in keep)
    return Encodings(table.space, table.kind, table.names, archs, table.values[keep].copy(), table.meta, table.encoder)


@pytest.mark.parametrize("kind", encodings.KINDS)
def test_shipped_tables_cover_every_dataset_architecture_in_order(kind: str) -> None:
    nb201 = encodings.load("nb201", kind)
    assert nb201.archs == tuple(get_space("nb201").archs())  # type: ignore[attr-defined]
    assert nb201.values.shape == (15_625, len(nb201.names))
    fbnet = encodings.load("fbnet", kind)
    assert fbnet.archs == datasets.load("help-fbnet").archs
    assert fbnet.values.shape == (5_000, len(fbnet.names))
    for table in (nb201, fbnet):
        assert table.values.dtype == np.float32 and np.all(np.isfinite(table.values))
        assert table.meta["seed"] == 0 and table.meta["code_version"] >= 1


def test_zcp_tables_name_their_proxies() -> None:
    names = set(encodings.load("nb201", "zcp").names)
    assert {"params", "flops", "synflow", "snip", "grad_norm", "jacov", "nwot"} <= names


@pytest.mark.parametrize("space", ["nb201", "fbnet"])
@pytest.mark.slow
def test_zcp_lookup_recomputes_missing_rows_as_the_table_has_them(space: str) -> None:
    table = encodings.load(space, "zcp")
    rows = [0, len(table.archs) // 2, len(table.archs) - 1]
    recomputed = without(table, rows).lookup([table.archs[i] for i in rows])
    # The shipped table was computed on another CPU: the proxies' float reductions (gradients, Jacobians, log-dets)
    # round differently across CPUs, up to ~0.25% relative. Proxies of different architectures differ far more, so
    # 1% still catches a recomputation of the wrong network or with other settings.
    np.testing.assert_allclose(recomputed, table.values[rows], rtol=1e-2, atol=1e-6)
    assert not np.allclose(table.values[rows[0]], table.values[rows[1]], rtol=1e-2, atol=1e-6)


@pytest.mark.parametrize("space", ["nb201", "fbnet"])
def test_arch2vec_lookup_embeds_missing_rows_with_the_shipped_encoder(space: str) -> None:
    table = encodings.load(space, "arch2vec")
    rows = [1, 7, 4000]
    recomputed = without(table, rows).lookup([table.archs[i] for i in rows])
    np.testing.assert_allclose(recomputed, table.values[rows], rtol=1e-5, atol=1e-6)


def test_lookup_accepts_non_canonical_strings_and_keeps_the_requested_order() -> None:
    table = encodings.load("nb201", "arch2vec")
    a, b = table.archs[5], table.archs[3]
    np.testing.assert_array_equal(table.lookup([f"  {a} ", b, a]), table.values[[5, 3, 5]])


def test_an_unknown_space_or_kind_is_one_clear_error() -> None:
    with pytest.raises(EncodingsError, match="no encodings for search space 'nb101'; choose one of: nb201, fbnet"):
        encodings.load("nb101", "zcp")
    with pytest.raises(EncodingsError, match="unknown encoding kind 'cate'; choose one of: zcp, arch2vec"):
        encodings.load("nb201", "cate")


def test_a_missing_table_says_how_to_compute_it(tmp_path: Path) -> None:
    with pytest.raises(EncodingsUnavailable, match="latbench predictor encodings compute --space fbnet --kind zcp"):
        encodings.load("fbnet", "zcp", path=tmp_path / "none.npz")


def test_saved_tables_round_trip_and_damaged_ones_are_refused(tmp_path: Path) -> None:
    table = encodings.load("fbnet", "arch2vec")
    path = encodings.save(table, tmp_path / "fbnet-arch2vec.npz")
    again = encodings.load("fbnet", "arch2vec", path=path)
    assert again.archs == table.archs and again.names == table.names
    np.testing.assert_array_equal(again.values, table.values)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(EncodingsError, match="cannot read encodings file"):
        encodings.load("fbnet", "arch2vec", path=path)
    with pytest.raises(EncodingsError, match="not nb201-arch2vec"):
        encodings.load("nb201", "arch2vec", path=encodings.save(table, tmp_path / "copy.npz"))


def test_a_table_computed_into_latbench_home_replaces_the_shipped_one(tmp_path: Path) -> None:
    table = encodings.load("fbnet", "arch2vec")
    small = without(table, list(range(10, 5000)))
    encodings.save(small, tmp_path / "home" / "encodings" / "fbnet-arch2vec.npz")
    assert len(encodings.load("fbnet", "arch2vec").archs) == 10
