"""Remote runners: measure on devices that cannot host an agent (SSH to a Linux board, adb to a phone).

``open_runner("ssh://pi@board:22", known_hosts=...)`` or ``open_runner("adb://SERIAL", tool="benchmark_model")``
gives a ``RemoteRunner`` that an agent measures its jobs through. This module imports its parts only when
called: the device-side stub (``python -m latbench.agents.remote``) runs with numpy and an engine alone, and
nothing imports paramiko until an SSH device is opened.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from latbench.errors import HostUnreachable, RemoteError

if TYPE_CHECKING:
    from latbench.agents.remote.device import RemoteDevice
    from latbench.agents.remote.runner import RemoteRunner

log = logging.getLogger("latbench.agent")


def open_device(
    url: str,
    *,
    key_file: Path | None = None,
    known_hosts: Path | None = None,
    host_key_fingerprint: str | None = None,
    adb: str = "adb",
) -> RemoteDevice:
    """The device at ``url``: ``ssh://user@host[:port]`` or ``adb://[SERIAL]``."""
    if url.startswith("adb://"):
        from latbench.agents.remote.adb import AdbDevice

        return AdbDevice(url.removeprefix("adb://") or None, adb=adb)
    if url.startswith("ssh://"):
        from latbench.agents.remote.ssh import SshDevice, SshTarget

        return SshDevice.open(
            SshTarget.parse(url), key_file=key_file, known_hosts=known_hosts, host_key_fingerprint=host_key_fingerprint
        )
    raise RemoteError(f"unknown remote {url!r}: use ssh://user@host[:port] or adb://[SERIAL]")


def open_runner(
    url: str,
    *,
    tool: str = "stub",
    command: str | None = None,
    cpu_mask: str | None = None,
    key_file: Path | None = None,
    known_hosts: Path | None = None,
    host_key_fingerprint: str | None = None,
    adb: str = "adb",
    reconnect_delays_s: Sequence[float] | None = None,
    wait_s: float = 0.0,
) -> RemoteRunner:
    """A runner measuring with ``tool`` (``stub``, ``benchmark_model``, ``onnxruntime_perf_test``) on ``url``;
    ``command`` is the tool's path on the device (the Python interpreter for the stub); ``reconnect_delays_s``
    the waits before each try to reconnect after a drop (default ``runner.RECONNECT_DELAYS_S``). A device that
    no connection reaches yet (still booting) is tried again for ``wait_s`` seconds; a refused host key or
    login fails at once."""
    from latbench.agents.remote.runner import RemoteRunner
    from latbench.agents.remote.tools import TOOLS

    if tool not in TOOLS:
        raise RemoteError(f"unknown remote tool {tool!r}; choose one of: {', '.join(TOOLS)}")
    chosen = TOOLS[tool](command, cpu_mask)
    deadline = time.monotonic() + wait_s
    for delay in itertools.chain(START_DELAYS_S, itertools.repeat(START_DELAYS_S[-1])):
        try:
            device = open_device(
                url, key_file=key_file, known_hosts=known_hosts, host_key_fingerprint=host_key_fingerprint, adb=adb
            )
        except HostUnreachable as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise HostUnreachable(f"{exc}{f' (tried for {wait_s:.0f} s)' if wait_s else ''}") from None
            log.warning("%s; trying again in %.0f s", exc, min(delay, left))
            time.sleep(min(delay, left))
            continue
        return RemoteRunner(device, chosen, reconnect_delays_s)
    raise AssertionError("unreachable")


START_DELAYS_S = (2.0, 5.0, 10.0, 30.0)
"""The waits between tries to reach a device at start-up; the last repeats until ``wait_s`` is spent."""


__all__ = ["open_device", "open_runner"]
