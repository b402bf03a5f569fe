"""The errors of device datasets, under ``LatbenchError`` so the CLI prints each as one line and exits 1."""

from __future__ import annotations

from latbench.errors import LatbenchError


class DatasetError(LatbenchError):
    """A dataset operation that cannot be done as asked."""


class DatasetNotFound(DatasetError):
    """A dataset name that is neither built in nor in the registry."""


class DatasetExists(DatasetError):
    """A dataset name already taken (built in, or in the registry without ``overwrite``)."""


class InvalidTable(DatasetError):
    """An input file (CSV, parquet, results, pickle) that cannot become a dataset: columns, values or settings."""


class TaskUnavailable(DatasetError):
    """A task whose devices are not all in the datasets at hand; the message names them and where they come from."""


class ArchEncodingChanged(DatasetError):
    """A stored dataset whose architecture codes the search space as installed now decodes differently (a plugin
    reordered ``archs()`` or its genes since the dataset was built): refused rather than mapped to other networks."""
