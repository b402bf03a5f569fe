"""Text cells of the CSV files latbench writes, made inert for spreadsheets (formula injection).

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return before one)
as a formula: an architecture or model named ``=HYPERLINK(...)`` would run when a results file is opened. Such a
text cell is written with a leading single quote, which spreadsheets show as text; a text cell that itself starts
with a quote gets one too, so that reading drops exactly one quote and every value reads back unchanged. Numbers
are never text cells: a negative latency stays a number.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"


def inert(text: str) -> str:
    """``text`` as a CSV cell that no spreadsheet runs."""
    return QUOTE + text if text.startswith((*FORMULA_STARTS, QUOTE)) else text


def restored(cell: str) -> str:
    """The text ``inert`` wrote as ``cell``."""
    return cell[1:] if cell.startswith(QUOTE) else cell
