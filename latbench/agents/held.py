"""The leases an agent holds and the job it is measuring, kept in its state dir (``leases.json``).

A stopped agent releases its leases; a killed one (SIGKILL, the out-of-memory killer, a power cut) cannot, and
each lease it held used to wait out its time and then count as a failure of its job, though only the job being
measured may have been at fault. The next start reads this file: the job that was being measured gets an error
result (it counts as a failed attempt, so a model that kills the agent is failed after a few), and the other
leases are released at once without counting. Written atomically on every change; a lost or unreadable file
only means the old behaviour (the leases expire).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from latbench.agents.identity import storage_error

HELD_FILE = "leases.json"
KILLED_WHILE_MEASURING = (
    "the agent stopped while measuring this job (killed, crashed or out of memory) and found it so on restart"
)

log = logging.getLogger("latbench.agent")


@dataclass
class HeldJobs:
    """Lease id -> job id of the leases held, and the lease whose job is being measured, mirrored to ``path``."""

    path: Path
    held: dict[str, str] = field(default_factory=dict)
    measuring: str | None = None

    @classmethod
    def recover(cls, path: Path) -> HeldJobs:
        """What a previous run left in ``path`` (nothing if it stopped cleanly, or the file is unreadable)."""
        try:
            data = json.loads(path.read_text())
            held = {str(lease): str(job) for lease, job in data["held"].items()}
            measuring = data.get("measuring")
            return cls(path, held, measuring if measuring in held else None)
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            log.warning("ignoring %s, which cannot be read (%s): the leases it held expire", path, exc)
            return cls(path)

    def add(self, jobs: Iterable[tuple[str, str]]) -> None:
        """Hold these (lease id, job id) pairs."""
        self.held.update(jobs)
        self._save()

    def start(self, lease_id: str) -> None:
        self.measuring = lease_id
        self._save()

    def stop(self) -> None:
        """No job is being measured any more (its result, if any, is about to be spooled)."""
        if self.measuring is not None:
            self.measuring = None
            self._save()

    def drop(self, lease_ids: Iterable[str]) -> None:
        """These leases are settled: their results spooled, or released, or lost to another agent."""
        before = len(self.held)
        for lease_id in lease_ids:
            self.held.pop(lease_id, None)
        if self.measuring not in self.held:
            self.measuring = None
        if len(self.held) != before:
            self._save()

    def _save(self) -> None:
        if not self.held:
            try:
                self.path.unlink(missing_ok=True)
            except OSError as exc:
                raise storage_error(f"cannot remove {self.path}", exc) from None
            return
        partial = self.path.with_name(self.path.name + ".tmp")
        try:
            partial.write_text(json.dumps({"held": self.held, "measuring": self.measuring}))
            os.replace(partial, self.path)
        except OSError as exc:
            raise storage_error(f"cannot write {self.path}", exc) from None
