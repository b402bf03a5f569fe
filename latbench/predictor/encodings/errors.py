"""The errors of architecture encodings, under ``LatbenchError`` so the CLI prints each as one line and exits 1,
and the interrupt of a checkpointed computation, which says what it kept."""

from __future__ import annotations

from pathlib import Path

from latbench.errors import LatbenchError


class EncodingsError(LatbenchError):
    """An encoding request that cannot be served as asked (unknown space or kind, bad file)."""


class EncodingsUnavailable(EncodingsError):
    """A table that is neither shipped nor computed yet; the message says the command that computes it."""


class ZcpInterrupted(KeyboardInterrupt):
    """Ctrl-C during a checkpointed zero-cost-proxy run, after its ``rows`` finished rows (of ``total``) were
    saved to ``checkpoint``: still a ``KeyboardInterrupt``, so callers that stop on one still stop."""

    def __init__(self, rows: int, total: int, checkpoint: Path) -> None:
        super().__init__(f"interrupted: {rows} of {total} rows kept in {checkpoint}")
        self.rows = rows
        self.total = total
        self.checkpoint = checkpoint
