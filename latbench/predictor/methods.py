"""The predictor methods' registry: their names and one-line descriptions, apart from the training code so that
a command line can offer and check the choices without loading torch."""

from __future__ import annotations

DEFAULT_METHOD = "latbench"
METHODS = {
    "latbench": "ensemble of NASFLAT, ridge, NNLS, cost-feature ridge, NNLS and top-4 ridge, FLOPs, weighted by "
    "leave-one-out error",
    "nasflat": "the NASFLAT graph network (op-wise hardware embedding, cost features before the head)",
    "help": "HELP-style MLP; the device is its min-max latencies on 10 reference architectures",
    "multipredict": "MultiPredict-style MLP on one-hot ops and cost features with a device embedding",
    "flops": "FLOPs (MACs) alone",
    "params": "parameter count alone",
    "ridge": "ridge of the target on source-device latencies + FLOPs (z-scored, alpha by leave-one-out)",
    "nnls": "non-negative least squares on the 3 best-correlated source devices + FLOPs",
    "cost-ridge": "ridge on cost features (MACs, params, launches, activations, op counts)",
    "cost-nnls": "non-negative least squares of the ms on the cost features as sums (an additive roofline)",
    "cost-top": "ridge on the 4 cost features most correlated with the target's samples",
}
"""Method name -> what it is (docs/predictor.md, "Methods")."""
