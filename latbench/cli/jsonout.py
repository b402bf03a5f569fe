"""JSON as ``--json`` prints it and ``--out``/``--report`` write it: strict JSON, whatever the figures hold.

Python's ``json.dumps`` writes an unbounded interval's end or an undefined correlation as ``Infinity`` or ``NaN``,
which are not JSON (jq, JavaScript and strict parsers refuse the document). Every non-finite number is written as
``null`` instead: "no finite value", the meaning an unbounded interval end has in every command's output.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinity (Python or numpy, at any depth) replaced by None, numpy scalars and
    arrays made plain Python."""
    if isinstance(value, np.ndarray):
        return finite(value.tolist())
    if isinstance(value, np.generic):
        return finite(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def dumps(value: Any, indent: int | None = None) -> str:
    """``value`` as strict JSON (``finite``; ``allow_nan=False`` guards the rule)."""
    return json.dumps(finite(value), indent=indent, allow_nan=False)
