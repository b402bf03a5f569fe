"""Device latency datasets: build from measurements, import public tables, export for predictors, task suites.

```python
from latbench import datasets

help201 = datasets.load("help-nb201")              # built in, offline: 27 devices x 15,625 cells
ds = datasets.build_from_results("results.csv", name="my-pi")
datasets.save(ds)                                   # into $LATBENCH_HOME/datasets/my-pi
view = datasets.combine([help201, datasets.load("my-pi")])
split = datasets.hard_split(view, train=5, test=5, seed=0)
```

Matplotlib (plots) and networkx (hard splits) come with ``pip install 'latbench[datasets]'``.
"""

from __future__ import annotations

from latbench.datasets.build import build_from_campaign, build_from_results, build_from_rows
from latbench.datasets.cards import describe
from latbench.datasets.correlation import Correlations, device_correlations
from latbench.datasets.errors import (
    ArchEncodingChanged,
    DatasetError,
    DatasetExists,
    DatasetNotFound,
    InvalidTable,
    TaskUnavailable,
)
from latbench.datasets.export import FORMATS, export
from latbench.datasets.families import FAMILIES, device_family
from latbench.datasets.hwnas import import_hwnasbench
from latbench.datasets.model import Dataset, DeviceMeta, ModelKey, combine
from latbench.datasets.plots import plot
from latbench.datasets.protocol import PARTS, ProtocolSplit, protocol_splits
from latbench.datasets.registry import (
    BUILTINS,
    Summary,
    list_datasets,
    load,
    registry_dir,
    remove,
    save,
    space_archs,
)
from latbench.datasets.splits import Split, hard_split
from latbench.datasets.tables import UNITS, import_table
from latbench.datasets.tasks import TASKS, Availability, Task, availability, generate_split, get_task, resolve_task

__all__ = [
    "BUILTINS",
    "FAMILIES",
    "FORMATS",
    "PARTS",
    "TASKS",
    "UNITS",
    "ArchEncodingChanged",
    "Availability",
    "Correlations",
    "Dataset",
    "DatasetError",
    "DatasetExists",
    "DatasetNotFound",
    "DeviceMeta",
    "InvalidTable",
    "ModelKey",
    "ProtocolSplit",
    "Split",
    "Summary",
    "Task",
    "TaskUnavailable",
    "availability",
    "build_from_campaign",
    "build_from_results",
    "build_from_rows",
    "combine",
    "describe",
    "device_correlations",
    "device_family",
    "export",
    "generate_split",
    "get_task",
    "hard_split",
    "import_hwnasbench",
    "import_table",
    "list_datasets",
    "load",
    "plot",
    "protocol_splits",
    "registry_dir",
    "remove",
    "resolve_task",
    "save",
    "space_archs",
]
