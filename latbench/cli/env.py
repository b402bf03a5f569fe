"""``latbench env``: what this machine is, as measurements will record it."""

from __future__ import annotations

import json

from latbench.agents.environment import machine_info, machine_state
from latbench.agents.runtimes import available_runtimes
from latbench.cli import options as opt
from latbench.cli.console import out


def env_command(
    as_json: opt.AsJson = False,
) -> None:
    """Show the environment snapshot and device fingerprint that results will carry."""
    info = machine_info()
    data = {
        "device_id": info.fingerprint(),
        **info.as_dict(),
        **machine_state().as_dict(),
        "runtimes": available_runtimes(),
    }
    if as_json:
        print(json.dumps(data, indent=2))
        return
    width = max(map(len, data))
    for key, value in data.items():
        out.print(f"{key:<{width}}  {value}")
