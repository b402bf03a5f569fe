"""A remote runner: measure artifacts on a device that cannot host an agent, from an agent running elsewhere.

Per job: upload the artifact, run the device's benchmark tool on it, parse the statistics into the record a
local measurement produces, remove the artifact. The device's work dir goes when the runner closes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from latbench.agents.environment import MachineInfo
from latbench.agents.measure import Measurement, TimingSettings
from latbench.agents.remote.device import RemoteDevice
from latbench.agents.remote.tools import RemoteEngine, Tool
from latbench.errors import ProfilingUnsupported
from latbench.protocol import RuntimeOffer


class RemoteRunner:
    """``tool`` on ``device``; the runner owns the device connection and closes it."""

    def __init__(self, device: RemoteDevice, tool: Tool) -> None:
        self.device = device
        self.tool = tool
        try:
            tool.prepare(device)
        except BaseException:
            device.close()
            raise

    @property
    def target(self) -> str:
        return self.device.target

    def artifact_format(self, runtime: str) -> str:
        return self.tool.artifact_format(runtime)

    def offers(self, runtimes: list[str]) -> list[RuntimeOffer]:
        return self.tool.offers(self.device, runtimes)

    def machine_info(self) -> MachineInfo:
        """The device's hardware: the agent enrolls it, not the machine the agent runs on."""
        return self.tool.machine_info(self.device)

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
        remote = self.device.path(artifact.name)
        self.device.put(artifact, remote)
        try:
            settings = settings or TimingSettings()
            return self.tool.measure(self.device, remote, runtime, threads, provider, settings, input_shapes)
        finally:
            self.device.remove(remote)

    def close(self) -> None:
        try:
            self.tool.close()
        finally:
            self.device.close()

    def __enter__(self) -> RemoteRunner:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
