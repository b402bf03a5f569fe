"""The predictor's errors, under ``LatbenchError`` so the CLI prints each as one line and exits 1."""

from __future__ import annotations

from latbench.errors import LatbenchError


class PredictorError(LatbenchError):
    """A predictor operation that cannot be done as asked (bad samples, unknown method, too few devices)."""


class UnknownDevice(PredictorError):
    """A device name the model or the dataset at hand does not know."""


class ModelFileError(PredictorError):
    """A predictor file that is missing, not a latbench predictor, or damaged."""


class ArchsFileError(PredictorError):
    """An architecture list (``--archs-file``) that is missing, lists nothing, or holds a line that is no
    architecture of the space."""
