"""latbench's tests, a package so that they import shared helpers as ``tests.support...`` (pytest puts the
repository root on ``sys.path``: its default ``prepend`` import mode inserts the folder above the top package)."""
