"""Where an agent keeps its identity: the state dir and the credentials enrollment gave it."""

from __future__ import annotations

import json
import os
import platform
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from latbench.errors import LatbenchError
from latbench.paths import latbench_home


def default_state_dir() -> Path:
    """``$LATBENCH_HOME/agent``."""
    return latbench_home() / "agent"


def default_name() -> str:
    """The host name, made a valid agent name: the name of an agent enrolled without one."""
    name = re.sub(r"[^A-Za-z0-9._@:+-]", "-", platform.node()).lstrip("._@:+-")[:128]
    return name or "agent"


CREDENTIALS_FILE = "agent.json"
"""In the state dir: an agent that has enrolled (``deploy`` tells an upgrade from a first deploy by it)."""


@dataclass(frozen=True)
class Credentials:
    """What enrollment gave this agent; kept in ``agent.json`` with mode 0600, since the token is a password."""

    collector_url: str
    agent_id: str
    agent_token: str
    device_id: str
    device_name: str
    heartbeat_interval_s: float
    lease_ttl_s: float
    name: str = ""
    """The name the agent enrolled under ("" in files from before it was kept): a restart without ``--name``
    goes on as this agent, and says so, rather than as the host name."""
    fingerprint: str = ""
    """The hardware fingerprint it enrolled with ("" in files from before it was kept): a state dir copied to
    other hardware, or a remote state dir pointed at another device, is refused rather than filed under the
    device it enrolled as."""

    @classmethod
    def load(cls, path: Path) -> Credentials | None:
        if not path.exists():
            return None
        try:
            return cls(**json.loads(path.read_text()))
        except (ValueError, TypeError) as exc:
            raise LatbenchError(f"{path} is damaged ({exc}); remove it to enroll again") from None

    def save(self, path: Path) -> None:
        """Write atomically, never readable by others, even for a moment."""
        partial = path.with_name(path.name + ".tmp")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(self), f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, path)
