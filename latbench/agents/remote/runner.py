"""A remote runner: measure artifacts on a device that cannot host an agent, from an agent running elsewhere.

Per job: upload the artifact, run the device's benchmark tool on it, parse the statistics into the record a
local measurement produces, remove the artifact. The device's work dir goes when the runner closes.

A dropped connection (a network blip, a rebooted board) is the device's fault, not the job's: the runner opens it
again, host key verified as the first time, and sets the session up again (work dir, uploads, stub). An operation
that the drop interrupted runs once more; a device that stays away raises ``DeviceUnreachable``, on which the
agent releases the job's lease without counting a failure.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from latbench.agents.environment import MachineInfo
from latbench.agents.measure import Measurement, TimingSettings
from latbench.agents.remote.device import ConnectionLost, RemoteDevice
from latbench.agents.remote.tools import RemoteEngine, Tool
from latbench.errors import DeviceUnreachable, HostKeyRejected, ProfilingUnsupported, RemoteError
from latbench.protocol import RuntimeOffer

log = logging.getLogger("latbench.agent")

RECONNECT_DELAYS_S = (0.5, 2.0, 5.0, 10.0)
"""The waits before each try to reconnect: four tries over about 20 s (plus each try's own connection timeout),
enough for a network blip or an sshd restart; a reboot takes longer and is retried at the next operation."""

T = TypeVar("T")


class RemoteRunner:
    """``tool`` on ``device``; the runner owns the device connection and closes it. ``offers``, ``machine_info``
    and ``measure`` raise ``DeviceUnreachable`` when the device cannot be reached again (see the module doc)."""

    def __init__(self, device: RemoteDevice, tool: Tool, reconnect_delays_s: Sequence[float] | None = None) -> None:
        self.device = device
        self.tool = tool
        self.reconnect_delays_s = tuple(RECONNECT_DELAYS_S if reconnect_delays_s is None else reconnect_delays_s)
        self._lost: ConnectionLost | None = None
        self._closed = False
        try:
            tool.prepare(device)
        except BaseException:
            device.close()
            raise

    def _call(self, operation: Callable[[], T]) -> T:
        """``operation`` on the device: first reconnect if the connection was lost before; if it is lost during
        ``operation``, reconnect and run it once more."""
        for again in (False, True):
            if self._closed:
                raise RemoteError(f"{self.target}: the remote runner is closed")
            if self._lost is not None:
                self._reconnect()
            try:
                return operation()
            except ConnectionLost as exc:
                self._lost = exc
                if self._closed:
                    raise
                if again:
                    raise DeviceUnreachable(f"{exc} (again, after reconnecting)") from None
                log.warning("%s; reconnecting", exc)
        raise AssertionError("unreachable")

    def _reconnect(self) -> None:
        """Open the device again and prepare the tool there, waiting ``reconnect_delays_s`` before each try; a
        host key that no longer verifies ends the tries (connecting anyway is never an option)."""
        lost, error = self._lost, None
        with contextlib.suppress(RemoteError):
            self.tool.close()
        for delay in self.reconnect_delays_s:
            time.sleep(delay)
            try:
                self.device.reconnect()
                self.tool.prepare(self.device)
            except HostKeyRejected as exc:
                raise DeviceUnreachable(f"{self.target} cannot be reconnected to: {exc}") from None
            except RemoteError as exc:
                error = exc
                continue
            self._lost = None
            log.info("%s: reconnected (work dir %s)", self.target, self.device.workdir)
            return
        why = str(lost).removeprefix(f"{self.target}: ")
        raise DeviceUnreachable(
            f"{self.target} cannot be reached: {why}; {len(self.reconnect_delays_s)} tries to reconnect over "
            f"{sum(self.reconnect_delays_s):.0f} s failed, the last with: {error}"
        )

    def ensure_reachable(self) -> None:
        """Run a no-op on the device, reconnecting as any operation does: ``DeviceUnreachable`` while the device
        stays away. For the agent to call before it leases work again after a ``DeviceUnreachable``."""
        self._call(lambda: self.device.exec("true", timeout_s=60))

    @property
    def target(self) -> str:
        return self.device.target

    def artifact_format(self, runtime: str) -> str:
        return self.tool.artifact_format(runtime)

    def offers(self, runtimes: list[str]) -> list[RuntimeOffer]:
        return self._call(lambda: self.tool.offers(self.device, runtimes))

    def machine_info(self) -> MachineInfo:
        """The device's hardware: the agent enrolls it, not the machine the agent runs on."""
        return self._call(lambda: self.tool.machine_info(self.device))

    def measure(
        self,
        artifact: Path,
        runtime: str,
        threads: int = 1,
        provider: str = "cpu",
        settings: TimingSettings | None = None,
        input_shapes: Mapping[str, Sequence[int]] | None = None,
    ) -> tuple[Measurement, RemoteEngine]:
        """Time ``artifact`` on the device (a model file's dynamic dimensions filled from ``input_shapes``). Its
        result has no load, first-run or memory figures (the device's tools do not report them), and no profile:
        asking for one is refused before anything is copied."""
        if settings is not None and settings.profile_runs:
            raise ProfilingUnsupported(f"profiling not supported by runtime {runtime} on a remote device")
        timing = settings or TimingSettings()

        def upload_and_measure() -> tuple[Measurement, RemoteEngine]:
            remote = self.device.path(artifact.name)  # the work dir is a new one after a reconnect
            self.device.put(artifact, remote)
            try:
                return self.tool.measure(self.device, remote, runtime, threads, provider, timing, input_shapes)
            finally:
                self._discard(remote)

        return self._call(upload_and_measure)

    def _discard(self, remote: str) -> None:
        """Remove an uploaded artifact, never raising: a failure here must not mask the measurement's own error
        or lose its result; what is left goes with the work dir. A lost connection is reconnected next time."""
        try:
            self.device.remove(remote)
        except ConnectionLost as exc:
            self._lost = self._lost or exc
        except RemoteError as exc:
            log.warning("%s", exc)

    def close(self) -> None:
        """End the tool's session and the device connection; never raises for a connection that is gone."""
        self._closed = True
        try:
            with contextlib.suppress(RemoteError):
                self.tool.close()
        finally:
            self.device.close()

    def __enter__(self) -> RemoteRunner:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
