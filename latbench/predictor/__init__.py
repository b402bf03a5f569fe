"""NASFLAT and baseline latency predictors (to come)."""
