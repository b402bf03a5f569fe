"""Tables never cut an id or a name short: piped on, they are printed at their own width; in a narrow terminal,
a long cell folds onto the next line instead of ending in "…"."""

from __future__ import annotations

import io
import subprocess

import pytest
from rich.console import Console

from latbench.cli.console import Table
from tests.support.ports import free_port
from tests.support.processes import LATBENCH, Collector, env


def piped(*args: str) -> subprocess.CompletedProcess[str]:
    """``latbench ARGS | ...``: stdout a pipe, no terminal anywhere, no ``COLUMNS`` (rich's 80 columns before)."""
    environ = {k: v for k, v in env().items() if k != "COLUMNS"}
    return subprocess.run(
        [*LATBENCH, *args], capture_output=True, text=True, env=environ, stdin=subprocess.DEVNULL, timeout=120
    )


def test_a_piped_dataset_table_shows_every_device_name_whole():
    shown = piped("dataset", "show", "help-nb201")
    assert shown.returncode == 0, shown.stderr
    assert "…" not in shown.stdout
    names = [line.split("│")[1].strip() for line in shown.stdout.splitlines() if line.startswith("│")]
    assert {"1080ti_1", "1080ti_256", "2080ti_32", "titan_rtx_256", "titanxp_1"} <= set(names)


def test_a_datasets_provenance_reads_as_words_and_its_caveat_as_measured():
    shown = piped("dataset", "show", "here-nb201-int8")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "unstable: fp32 1, int8 1" in lines and not any(line.startswith("unstable: {") for line in lines)
    # re-measured on an idle machine: its caveat and device descriptions no longer say the machine was shared
    assert "machine that looked idle" in shown.stdout and "shared with other work" not in shown.stdout


def test_a_narrow_terminal_folds_a_long_id_instead_of_cutting_it():
    table = Table("id", "name", "state")
    table.add_row("c7ebdccd0f3a4b1e9b8c2d7e6f5a4b3c", "a-long-campaign-name", "running")
    printed = io.StringIO()
    Console(width=30, file=printed).print(table)
    text = printed.getvalue()
    assert "…" not in text
    cells = "".join(line.split("│")[1].strip() for line in text.splitlines() if line.startswith("│"))
    assert "c7ebdccd0f3a4b1e9b8c2d7e6f5a4b3c" in cells


@pytest.mark.slow  # a real collector
def test_a_piped_campaign_list_shows_whole_ids_that_can_be_copied(tmp_path):
    collector = Collector(f"sqlite:///{tmp_path / 'c.sqlite'}", tmp_path / "c", free_port()).start()
    try:
        created = piped("campaign", "create", "-s", "nb201", "-n", "2", "-r", "onnxruntime", "-d", "bench-1",
                        "--name", "a-campaign-with-a-long-name", "--collector", collector.url)  # fmt: skip
        assert created.returncode == 0, created.stderr
        campaign_id = created.stdout.strip()
        listed = piped("campaign", "list", "--collector", collector.url)
        assert listed.returncode == 0, listed.stderr
        assert "…" not in listed.stdout
        (row,) = [line for line in listed.stdout.splitlines() if campaign_id in line]
        assert "a-campaign-with-a-long-name" in row
    finally:
        assert collector.stop() == 0
