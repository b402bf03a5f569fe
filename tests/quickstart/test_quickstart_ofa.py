"""The quickstart on OFA MobileNetV3 without measuring: shorter defaults, and everything it compares against
comes from ``help-ofa`` (the end-to-end run is in test_quickstart.py's NB201 form)."""

from __future__ import annotations

import numpy as np
import pytest

from latbench import datasets
from latbench.quickstart import Defaults, defaults
from latbench.quickstart.evaluate import public_latencies
from latbench.quickstart.plan import make_plan


@pytest.mark.slow
def test_ofa_plans_from_help_ofa_and_compares_with_its_gpus() -> None:
    assert defaults("nb201") == Defaults() and defaults("ofa-mbv3").holdout == 30
    assert defaults("ofa-mbv3").settings().min_runs == 20 < Defaults().settings().min_runs
    help_ofa = datasets.load("help-ofa")
    plan = make_plan("ofa-mbv3", 5, 6, seed=0)
    assert len(plan.transfer) == 5 and len(plan.holdout) == 6 and set(plan.archs) <= set(help_ofa.archs)
    public = public_latencies("ofa-mbv3", plan.holdout)
    assert list(public) == help_ofa.device_names and all(np.isfinite(v).all() for v in public.values())
