"""Whether the store is still at the schema this process serves.

A replica left running while a newer release migrated the shared store would go on serving with its old idea of
the schema (leasing jobs of a campaign the new schema cancelled, say). ``SchemaWatch`` reads the store's revision
at most every ``SCHEMA_CHECK_S`` (and whenever ``/v1/ready`` asks), and ``SchemaGate`` then answers every request
but ``/v1/health`` and ``/v1/ready`` with a 503 ``schema_mismatch`` until the store is back at this process's
schema: the load balancer's readiness probe takes the replica out, and agents retry on another.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

import sqlalchemy as sa
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from latbench import __version__
from latbench.collectors.migrations import head, known_revisions, revision
from latbench.errors import RequestRejected
from latbench.protocol import ErrorBody

SCHEMA_CHECK_S = 30.0
"""The most seconds a replica serves after the store left its schema, once requests come."""
RETRY_AFTER_S = 2
log = logging.getLogger(__name__)


class SchemaMismatch(RequestRejected):
    """The store is not at the schema this collector serves: another replica of another release migrated it."""

    status = 503
    code = "schema_mismatch"


class SchemaWatch:
    """The store's revision as last read, and whether this process may serve it (only at its own ``expected``).

    Starts serving: the service has just migrated the store to ``expected``. A change either way is logged once.
    """

    def __init__(
        self,
        engine: sa.Engine,
        expected: str | None = None,
        interval_s: float = SCHEMA_CHECK_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.expected = expected or head()
        self.found: str | None = self.expected
        self.interval_s = interval_s
        self.clock = clock
        self._next = clock() + interval_s
        self._lock = threading.Lock()

    @property
    def serving(self) -> bool:
        return self.found == self.expected

    def claim(self) -> bool:
        """Whether a check is due, for one caller per interval (the others go on with the revision known)."""
        with self._lock:
            now = self.clock()
            if now < self._next:
                return False
            self._next = now + self.interval_s
            return True

    def check(self) -> str | None:
        """Read the store's revision now (one small query; SQLAlchemy's error if the store is unreachable)."""
        with self._lock:
            self._next = self.clock() + self.interval_s
        with self.engine.connect() as connection:
            found = revision(connection)
        with self._lock:
            was, self.found = self.serving, found
        if was and not self.serving:
            log.error("%s; this collector answers 503 to every request until it is stopped", self.refusal())
        elif self.serving and not was:
            log.warning("the store is back at schema revision %s: serving again", found)
        return found

    def refusal(self) -> str:
        """Why this process does not serve the store, in one line that says what to do."""
        found = self.found or "none"
        ours = f"this collector (latbench {__version__}) serves schema revision {self.expected}"
        if self.found is not None and self.found not in known_revisions():
            return (f"the store is at schema revision {found}, which a newer latbench migrated it to, and {ours}: "
                    "stop this replica and run the newer release")  # fmt: skip
        return f"the store is at schema revision {found} and {ours}: restart this collector to migrate the store"


class SchemaGate:
    """Answers 503 ``schema_mismatch`` (with ``Retry-After``) to every request but those to ``exempt`` paths while
    ``watch`` finds the store at another schema; checks it, off most requests, once per interval."""

    def __init__(self, app: ASGIApp, watch: SchemaWatch, exempt: frozenset[str]) -> None:
        self.app = app
        self.watch = watch
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        if self.watch.claim():
            with contextlib.suppress(sa.exc.SQLAlchemyError):  # unreachable: the request answers for the store
                await run_in_threadpool(self.watch.check)
        if self.watch.serving:
            await self.app(scope, receive, send)
            return
        body = ErrorBody(code=SchemaMismatch.code, message=self.watch.refusal(), detail=None).model_dump(mode="json")
        headers = {"Retry-After": str(RETRY_AFTER_S), "connection": "close"}
        await JSONResponse(body, SchemaMismatch.status, headers)(scope, receive, send)
