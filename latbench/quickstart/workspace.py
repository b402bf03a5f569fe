"""The quickstart's folder: everything a run made, and a state file that lets a re-run resume.

Steps record when they finished and how long they took; a step that finished is not run again, so an
interrupted quickstart (Ctrl-C, a crash, a reboot) picks up where it stopped with the same collector store,
campaign and agent identity.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latbench.errors import LatbenchError

STATE_FILE = "quickstart.json"


@dataclass
class Workspace:
    root: Path

    def __post_init__(self) -> None:
        self.root = self.root.expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.state = self._read()

    @property
    def collector_dir(self) -> Path:
        return self.root / "collector"

    @property
    def agent_dir(self) -> Path:
        return self.root / "agent"

    @property
    def logs_dir(self) -> Path:
        path = self.root / "logs"
        path.mkdir(exist_ok=True)
        return path

    def _read(self) -> dict[str, Any]:
        path = self.root / STATE_FILE
        if not path.exists():
            return {"steps": {}}
        try:
            state = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise LatbenchError(f"{path} is unreadable ({exc}); remove the folder to start over") from exc
        if not isinstance(state, dict) or not isinstance(state.get("steps"), dict):
            raise LatbenchError(f"{path} is not a quickstart state file; remove the folder to start over")
        return state

    def save(self) -> None:
        path = self.root / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=2, sort_keys=True))
        tmp.chmod(0o600)  # it holds the agent's enrollment token
        os.replace(tmp, path)

    def admin_token(self) -> str:
        """A token for this workspace's private collector, made once and kept (0600) so re-runs can use it."""
        path = self.root / "admin-token"
        if not path.exists():
            path.write_text(f"lb_admin_{secrets.token_urlsafe(24)}")
            path.chmod(0o600)
        return path.read_text().strip()

    def done(self, step: str) -> bool:
        return step in self.state["steps"]

    def finish(self, step: str, seconds: float, **facts: Any) -> None:
        self.state["steps"][step] = {"seconds": round(seconds, 3), **facts}
        self.save()

    def facts(self, step: str) -> dict[str, Any]:
        return self.state["steps"][step]

    def check_settings(self, settings: dict[str, Any]) -> None:
        """A workspace serves one set of choices; another set must use another folder (or start over)."""
        previous = self.state.get("settings")
        if previous is None:
            self.state["settings"] = settings
            self.save()
        elif previous != settings:
            diff = ", ".join(f"{k}: {previous.get(k)!r} -> {settings.get(k)!r}" for k in settings
                             if previous.get(k) != settings.get(k))  # fmt: skip
            raise LatbenchError(
                f"{self.root} holds a quickstart run with other settings ({diff}); "
                "use another --dir or remove that folder to start over"
            )
