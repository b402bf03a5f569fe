"""Where an agent keeps its identity: the state dir and the credentials enrollment gave it."""

from __future__ import annotations

import errno
import json
import os
import platform
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

from pydantic import Field, TypeAdapter, ValidationError

from latbench.agents.client import first_error
from latbench.errors import LatbenchError, LocalStorageError
from latbench.paths import latbench_home


def default_state_dir() -> Path:
    """``$LATBENCH_HOME/agent``."""
    return latbench_home() / "agent"


def default_name() -> str:
    """The host name, made a valid agent name: the name of an agent enrolled without one."""
    name = re.sub(r"[^A-Za-z0-9._@:+-]", "-", platform.node()).lstrip("._@:+-")[:128]
    return name or "agent"


def make_state_dir(path: Path) -> Path:
    """``path``, made if missing (mode 0700: it holds the agent's token); one line naming it where it cannot be."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except (FileExistsError, NotADirectoryError) as exc:
        where = "it is" if isinstance(exc, FileExistsError) else "a directory above it is"
        raise LocalStorageError(f"cannot make the state dir {path}: {where} a file; give another --state-dir") from None
    except OSError as exc:
        raise storage_error(f"cannot make the state dir {path}", exc) from None
    return path


def storage_error(doing: str, exc: OSError, keeps: str = "") -> LocalStorageError:
    """The error that stops an agent whose own state dir failed it: ``doing`` names the file or directory ("cannot
    write the spool /x/spool.sqlite"), then the cause and what to do, all in one line; ``keeps`` may add what is
    safe meanwhile. A full disk and a refused write are told apart because their remedies differ."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        advice = "free space there"
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        advice = "make it writable by the user the agent runs as"
    else:
        advice = "check that disk"
    return LocalStorageError(f"{doing}: {exc.strerror or exc}; {advice} and start the agent again{keeps}")


CREDENTIALS_FILE = "agent.json"
"""In the state dir: an agent that has enrolled (``deploy`` tells an upgrade from a first deploy by it)."""

_Text = Annotated[str, Field(min_length=1)]
_Seconds = Annotated[float, Field(gt=0, le=86_400, allow_inf_nan=False)]


@dataclass(frozen=True)
class Credentials:
    """What enrollment gave this agent; kept in ``agent.json`` with mode 0600, since the token is a password.

    The field types bound what ``load`` accepts: those of ``EnrollResponse``, which the values came from (ids not
    empty, a lease lifetime above 0), so an edited or damaged file stops the agent at start rather than a thread (a
    heartbeat interval that is no number) or every request (a token no header can carry) later.
    """

    collector_url: _Text
    agent_id: _Text
    agent_token: Annotated[str, Field(pattern=r"^[\x21-\x7e]{1,512}$")]
    device_id: _Text
    device_name: _Text
    heartbeat_interval_s: Annotated[_Seconds, Field(ge=0.1)]
    lease_ttl_s: _Seconds
    name: str = ""
    """The name the agent enrolled under ("" in files from before it was kept): a restart without ``--name``
    goes on as this agent, and says so, rather than as the host name."""
    fingerprint: str = ""
    """The hardware fingerprint it enrolled with ("" in files from before it was kept): a state dir copied to
    other hardware, or a remote state dir pointed at another device, is refused rather than filed under the
    device it enrolled as."""
    offered: str = ""
    """A digest of the runtimes (names, versions, providers) the collector was last told this agent offers ("" in
    files from before it was kept): a start offering others tells the collector again, which leases by them."""

    @classmethod
    def load(cls, path: Path) -> Credentials | None:
        """The saved credentials, ``None`` if there are none. Keys the file has and this agent does not know (a
        newer agent's) are ignored: going back to an older agent keeps the identity."""
        try:
            text = path.read_bytes()
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise _damaged(path, "a directory, not a file") from None
        except OSError as exc:
            raise storage_error(f"cannot read the agent's credentials {path}", exc) from None
        try:
            return _SAVED.validate_json(text, strict=True)
        except ValidationError as exc:
            raise _damaged(path, first_error(exc)) from None

    def save(self, path: Path) -> None:
        """Write atomically, never readable by others, even for a moment."""
        partial = path.with_name(path.name + ".tmp")
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(asdict(self), f, indent=2)
                f.flush()
                os.fsync(f.fileno())
            os.replace(partial, path)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise storage_error(f"cannot save the agent's credentials {path}", exc) from None


_SAVED = TypeAdapter(Credentials)


def _damaged(path: Path, problem: str) -> LatbenchError:
    """Removing the file and enrolling with an enrollment token does not bring the agent back: that token enrolls
    new names only, and a new agent cannot deliver the old one's spooled results (their leases are the old
    agent's). An admin token enrolls the same name again as the same agent, whose spooled results are accepted."""
    return LatbenchError(
        f"{path} is damaged ({problem}); to enroll this agent again as itself, which keeps its spooled results "
        "deliverable, remove the file and start the agent with its --name and an admin token (LATBENCH_TOKEN or "
        "--token): an enrollment token enrolls only a new name, and a new agent's pushes of them are refused"
    )
