"""The result-row schema orders a builder's values and refuses a row that lacks or adds a column."""

from __future__ import annotations

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
