"""The errors of architecture encodings, under ``LatbenchError`` so the CLI prints each as one line and exits 1."""

from __future__ import annotations

from latbench.errors import LatbenchError


class EncodingsError(LatbenchError):
    """An encoding request that cannot be served as asked (unknown space or kind, bad file)."""


class EncodingsUnavailable(EncodingsError):
    """A table that is neither shipped nor computed yet; the message says the command that computes it."""
