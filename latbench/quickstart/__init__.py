"""``latbench quickstart``: one command from a fresh install to a latency predictor for this machine.

```python
from latbench.quickstart import quickstart
result = quickstart("latbench-quickstart")          # resumable; returns SRCCs, timings and output paths
```
"""

from __future__ import annotations

from latbench.quickstart.run import STEPS, Defaults, QuickstartResult, defaults, quickstart

__all__ = ["STEPS", "Defaults", "QuickstartResult", "defaults", "quickstart"]
