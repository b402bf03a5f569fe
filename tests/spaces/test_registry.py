"""The search-space registry and the promise that spaces need no torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from latbench.errors import UnknownSpace
from latbench.spaces import get_space


def test_unknown_space_lists_the_known_ones():
    with pytest.raises(UnknownSpace, match="choose one of: nb201, fbnet"):
        get_space("darts")


def test_names_are_case_insensitive():
    assert get_space("NB201") is get_space("nb201")


def test_agent_side_imports_no_torch_or_collector():
    code = (
        "import sys, latbench, latbench.spaces, latbench.agents, latbench.agents.measure, "
        "latbench.agents.environment, latbench.agents.runtimes.onnxruntime, latbench.resultfile\n"
        "heavy = [m for m in ('torch', 'tensorflow', 'latbench.collectors', 'onnx') if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_official_index_exists_only_where_the_benchmark_defines_one():
    nb201, fbnet = get_space("nb201"), get_space("fbnet")
    arch = nb201.from_index(42)
    assert nb201.official_index(arch) == 42
    assert fbnet.official_index(fbnet.sample(1, seed=0)[0]) is None
