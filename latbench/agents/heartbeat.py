"""Keeping leases alive: the set of leases an agent holds, and the thread that renews them by heartbeat."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from latbench.agents.client import AgentClient
from latbench.errors import CollectorRejected, CollectorUnavailable

SHUTDOWN_TIMEOUT_S = 5.0
"""Per request while stopping (release leases, flush the spool once): a stop is never held up for long."""

log = logging.getLogger("latbench.agent")


class Leases:
    """The leases this agent holds, shared with the heartbeat thread: renewed while held, dropped once lost."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, None] = {}
        self._lost: set[str] = set()

    def add(self, lease_ids: Iterable[str]) -> None:
        with self._lock:
            self._held.update(dict.fromkeys(lease_ids))

    def discard(self, lease_id: str) -> None:
        with self._lock:
            self._held.pop(lease_id, None)
            self._lost.discard(lease_id)

    def lose(self, lease_ids: Iterable[str]) -> list[str]:
        """Mark those of ``lease_ids`` still held as lost and return them: a lease let go of meanwhile (its job
        done and its result pushed) is no loss."""
        with self._lock:
            lost = [i for i in lease_ids if i in self._held and i not in self._lost]
            self._lost.update(lost)
            return lost

    def is_lost(self, lease_id: str) -> bool:
        with self._lock:
            return lease_id in self._lost

    def active(self) -> list[str]:
        """Held and not lost: the leases to renew, or to release when stopping."""
        with self._lock:
            return [i for i in self._held if i not in self._lost]


class Heartbeat(threading.Thread):
    """Renews the agent's leases every interval on its own connection, so a long measurement keeps them."""

    def __init__(self, client: AgentClient, leases: Leases, interval_s: float) -> None:
        super().__init__(name="latbench-heartbeat", daemon=True)
        self.client = client
        self._leases = leases
        self._interval_s = interval_s
        self._stopped = threading.Event()

    def run(self) -> None:
        """Beat until stopped. An unexpected error in one beat (a bug, a value no request can carry) is logged once
        while it repeats, and the next beat comes as usual: a thread that died would leave the agent leasing work
        whose leases nobody renews, so every job longer than the lease's lifetime would expire and count."""
        failing = ""
        while not self._stopped.wait(self._interval_s):
            try:
                self.beat(self._leases.active())
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
                if reason != failing:
                    log.exception("heartbeat failed unexpectedly (%s); it goes on beating", reason)
                failing = reason
            else:
                failing = ""

    def beat(self, lease_ids: list[str]) -> None:
        """Renew ``lease_ids`` (the leases held when the beat began; the agent may finish some meanwhile)."""
        try:
            answer = self.client.heartbeat(lease_ids)
        except CollectorUnavailable as exc:
            log.debug("heartbeat failed: %s", exc)
            return
        except CollectorRejected as exc:
            log.warning("heartbeat refused: %s", exc)
            return
        lost = self._leases.lose(answer.lost)
        if lost:
            log.info("lost %d lease(s): %s", len(lost), ", ".join(lost))

    def stop(self) -> None:
        self._stopped.set()
        self.join(timeout=SHUTDOWN_TIMEOUT_S)
        if not self.is_alive():
            self.client.close()
