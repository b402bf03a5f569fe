"""Reported SRCC with 20 target samples (NASFLAT, MLSys 2024, from the authors' result files; PAPER.md)."""

from __future__ import annotations

PAPER_20: dict[str, dict[str, float]] = {
    "ND": {"nasflat": 0.959, "help": 0.948, "multipredict": 0.930},
    "NA": {"nasflat": 0.893, "help": 0.410, "multipredict": 0.820},
    "N1": {"nasflat": 0.967, "help": 0.604, "multipredict": 0.907},
    "N2": {"nasflat": 0.857, "help": 0.509, "multipredict": 0.757},
    "N3": {"nasflat": 0.962, "help": 0.729, "multipredict": 0.947},
    "N4": {"nasflat": 0.959, "help": 0.746, "multipredict": 0.952},
    "FD": {"nasflat": 0.961, "help": 0.910, "multipredict": 0.960},
    "FA": {"nasflat": 0.577, "help": 0.370, "multipredict": 0.450},
    "F1": {"nasflat": 0.809, "help": 0.793, "multipredict": 0.756},
    "F2": {"nasflat": 0.871, "help": 0.543, "multipredict": 0.567},
    "F3": {"nasflat": 0.814, "help": 0.413, "multipredict": 0.434},
    "F4": {"nasflat": 0.734, "help": 0.799, "multipredict": 0.763},
}

BAR_20: dict[str, float] = {
    "ND": 0.967,
    "FD": 0.969,
    "FA": 0.757,
    "F1": 0.890,
    "F2": 0.871,
    "F3": 0.814,
    "F4": 0.794,
}
"""The best of the paper's NASFLAT and the simple baselines measured on the shipped data (issue 5)."""
