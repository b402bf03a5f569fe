"""``python -m latbench.agents.remote``: the device-side stub (see ``stub.py``)."""

import sys

from latbench.agents.remote.stub import main

sys.exit(main())
