"""The collector's database: one engine per URL, and read and write sessions that behave alike on both stores.

SQLite (the default, a file in the data dir) runs in WAL mode so readers never wait for the writer, and every
write transaction starts with ``BEGIN IMMEDIATE``: concurrent writers queue on the busy timeout instead of
failing half-way with "database is locked". Within one process they first queue on a lock, which wakes the next
writer as soon as one commits, where the busy timeout's polling, with sleeps of up to 100 ms, left some requests
waiting for seconds under load while others went ahead. PostgreSQL (``postgresql+psycopg://``) runs at READ
COMMITTED and takes row locks where the leasing and results code asks for them.
"""

from __future__ import annotations

import contextlib
import functools
import re
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.expression import Executable

from latbench.errors import LatbenchError

if TYPE_CHECKING:
    from typing import Unpack

    from latbench.collectors.models import Base

BUSY_TIMEOUT_S = 30
POOL_SIZE = 48
"""Connections kept open: more than the request threads (40), so a busy collector never closes one it will need
again at once (each new PostgreSQL connection forks a server process)."""
WRITE_OPTION = "latbench_write"
"""Execution option marking a connection whose transactions write (``BEGIN IMMEDIATE`` on SQLite)."""
JOINED_INFO = "latbench_joined"
"""``Session.info`` key of the store's set of (campaign id, device id) memberships known to be committed."""
CACHE_INFO = "latbench_cache"
"""``Session.info`` key of the store's dict of rows that never change once committed (campaigns, say)."""


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_id() -> str:
    """A random row id, so replicas and restarts never collide and no id can be guessed."""
    return uuid.uuid4().hex


def run(session: Session, statement: Executable, params: Any = None) -> sa.CursorResult[Unpack[tuple[Any, ...]]]:
    """Execute a Core statement on the session's connection, skipping the ORM's execution path.

    The hot paths build their statements once, at import, over tables rather than ORM attributes, and pass
    values as bound parameters: building a statement and computing its cache key cost more CPU than running
    it, and a statement over ORM attributes goes through the ORM's compile step on every execution.
    """
    return session.connection().execute(statement, params)


def _driver(connection: sa.Connection) -> Any:
    """The psycopg connection under ``connection``, which is checked out and so never lacks one."""
    driver = connection.connection.driver_connection
    assert driver is not None
    return driver


@contextlib.contextmanager
def pipelined(session: Session, commit: bool = False) -> Iterator[None]:
    """Send the block's statements to PostgreSQL together and wait for them once (psycopg's pipeline mode), with
    the transaction's ``COMMIT`` if ``commit``; on SQLite, where a statement costs no round trip, run them as
    they come (and leave the commit to the transaction's block).

    A request's writes are several statements whose results nobody reads; waiting for each in turn cost a
    round trip apiece, and on a busy machine every wait is also a wait for the scheduler and the interpreter
    lock. Only statements that return no rows may run inside; an error among them is raised when the block
    ends, and the transaction then rolls back as usual. ``commit`` is for a transaction's last writes: the
    transaction's own commit then finds nothing left to do, and a rollback after the block nothing to undo.
    """
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        yield
        return
    driver = _driver(connection)
    with driver.pipeline():  # leaving the block sends the one Sync and reads every result
        yield
        if commit:  # a statement, not ``driver.commit()``, which would wait for it before the block's own Sync
            driver.execute("COMMIT")


@functools.cache
def _sql(statement: sa.ClauseElement, dialect: sa.Dialect) -> str:
    return str(statement.compile(dialect=dialect))


def opening_row(session: Session, statement: sa.Select[Any] | sa.UpdateBase, params: dict[str, Any]) -> Any:
    """The first row of ``statement`` run as the transaction's first statement (a named tuple, or None).

    On PostgreSQL the transaction's ``BEGIN`` travels with the statement in one round trip, where psycopg
    otherwise waits for it apart; every agent request opens a transaction this way. ``params`` are given to
    the driver as they are (no SQLAlchemy type processing): plain strings, numbers and aware datetimes.
    """
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return connection.execute(statement, params).first()
    from psycopg.rows import namedtuple_row  # the driver is there: this is a PostgreSQL store

    driver = _driver(connection)
    with driver.cursor(row_factory=namedtuple_row) as cursor:
        with driver.pipeline():  # its end sends BEGIN and the statement, and reads both results
            cursor.execute(_sql(statement, connection.dialect), params)
        return cursor.fetchone()


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached or dropped the connection (a restart, say), so the
    same statement may well succeed later, as opposed to a statement the database refuses."""
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    return exc.connection_invalidated or isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError))


def outage_reason(exc: BaseException) -> str:
    """The first line of what the driver said: an outage is logged as one line, not a traceback per attempt."""
    return (str(getattr(exc, "orig", exc)).strip().splitlines() or [type(exc).__name__])[0]


def is_unique_violation(exc: BaseException) -> bool:
    """Whether ``exc``, raised by either store (wrapped by SQLAlchemy or not), broke a unique key."""
    original = getattr(exc, "orig", exc)
    if getattr(original, "sqlstate", None) == "23505":
        return True
    return isinstance(original, sqlite3.IntegrityError) and "UNIQUE constraint failed" in str(original)


@functools.cache
def _insert_ignoring(dialect: str, table: sa.Table) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing()


def _ignoring_duplicates(session: Session, model: type[Base]) -> Any:
    """An INSERT that skips rows breaking a unique key, also against a concurrent transaction's insert."""
    return _insert_ignoring(session.get_bind().dialect.name, model.__table__)


def insert_new(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> None:
    """Insert those of ``rows`` whose unique keys are not taken."""
    run(session, _ignoring_duplicates(session, model), rows)


def insert_one(session: Session, model: type[Base], row: dict[str, Any]) -> bool:
    """Insert ``row`` unless one of its unique keys is taken; say whether it was inserted."""
    statement = _ignoring_duplicates(session, model)
    return session.execute(statement.returning(*model.__table__.primary_key), row).first() is not None


class UTCDateTime(sa.TypeDecorator[datetime]):
    """An aware UTC datetime on every backend (SQLite keeps naive text, so the zone is put back on read)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the store keeps aware datetimes only")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _sqlite_setup(engine: sa.Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver's own implicit BEGIN would defeat BEGIN IMMEDIATE
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql(
            "BEGIN IMMEDIATE" if connection.get_execution_options().get(WRITE_OPTION) else "BEGIN"
        )


def create_engine(url: str) -> sa.Engine:
    """An engine for ``sqlite:///FILE`` or ``postgresql+psycopg://...``, pooled for a threaded server."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise LatbenchError(f"not a database URL: {_shown(url)!r}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise LatbenchError("the collector needs a SQLite file (sqlite:///PATH), not an in-memory database")
        engine = sa.create_engine(
            parsed,
            pool_size=POOL_SIZE,
            max_overflow=16,
            connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_S},
        )
        _sqlite_setup(engine)
        return engine
    if backend == "postgresql":
        # No pre-ping (a round trip per request): a connection the server dropped fails its one request, and
        # SQLAlchemy then discards the pool's other connections from before the drop.
        return sa.create_engine(parsed, pool_size=POOL_SIZE, max_overflow=16)
    raise LatbenchError(f"unsupported database {backend!r}: use sqlite:///PATH or postgresql+psycopg://...")


def _shown(url: str) -> str:
    """``url`` as an error message may show it: any password in it as ``***``, parsed as a URL or not."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return re.sub(r"(^|//)([^:/@]*):[^@]*@", r"\1\2:***@", url)


def unopened(url: str, exc: sa.exc.DBAPIError) -> LatbenchError:
    """A store that cannot be opened, in one line: where (the URL without its password) and the driver's reason."""
    lines = str(exc.orig if exc.orig is not None else exc).strip().splitlines()
    return LatbenchError(f"cannot open the store at {_shown(url)}: {lines[0] if lines else type(exc).__name__}")


class Store:
    """A database and the sessions the collector uses on it: short write transactions and plain reads."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        info: dict[str, Any] = {JOINED_INFO: set(), CACHE_INFO: {}}
        self._reads = sessionmaker(self.engine, expire_on_commit=False, info=info)
        self._writes = sessionmaker(
            self.engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False, info=info
        )
        self._writer: contextlib.AbstractContextManager[Any] = (
            threading.RLock() if self.engine.dialect.name == "sqlite" else contextlib.nullcontext()
        )

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that commits when the block ends and rolls back, writing nothing, if it raises."""
        with self._writer, self._writes.begin() as session:
            yield session

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        with self._reads() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()
