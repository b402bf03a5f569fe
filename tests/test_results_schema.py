"""The result-row schema orders a builder's values and refuses a row that lacks or adds a column."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from latbench.results_schema import EXPORT_COLUMNS, RESULT_COLUMNS, result_row


def test_a_row_comes_out_in_schema_order():
    values = {c.name: i for i, c in reversed(list(enumerate(RESULT_COLUMNS)))}
    row = result_row(values)
    assert list(row) == [c.name for c in RESULT_COLUMNS] and list(row.values()) == list(range(len(RESULT_COLUMNS)))


def test_a_row_missing_or_adding_a_column_is_refused():
    values = {c.name: None for c in RESULT_COLUMNS}
    with pytest.raises(ValueError, match=r"missing: \['device'\].*unknown: \[\]"):
        result_row({**values, "agent": "a", "result_id": "r"}, EXPORT_COLUMNS)
    del values["times_ms"]
    with pytest.raises(ValueError, match=r"missing: \['times_ms'\], unknown: \['x'\]"):
        result_row({**values, "x": 1})


def test_column_names_are_unique():
    names = [c.name for c in EXPORT_COLUMNS]
    assert len(names) == len(set(names))


def test_the_measurement_docs_list_every_column_in_schema_order():
    """docs/measurement.md's "Output" list is what users read; it once lacked two columns and misplaced six."""
    text = (Path(__file__).parents[1] / "docs" / "measurement.md").read_text()
    listed = text.split("## Output", 1)[1].split("`", 2)[1]
    names = [n.strip() for n in re.split(r",\s*", listed)]
    expected = [c.name for c in RESULT_COLUMNS if not c.name.startswith(("cfg_", "env_")) and c.name != "times_ms"]
    assert names == expected
