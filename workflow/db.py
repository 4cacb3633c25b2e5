"""Database engines for SQLite (the embedded default) and PostgreSQL.

SQLite runs in WAL mode. Write transactions (`transaction(engine)`) start with BEGIN
IMMEDIATE, so two writers queue on the database lock (tried every few ms: `begin_immediate`)
instead of failing halfway with "database is locked" when a reader upgrades to a writer; plain
reads (`engine.connect()`) start a deferred transaction and never wait for writers. PostgreSQL
runs at READ COMMITTED (reads declared with `read_only`: READ ONLY): the engine's conditional
UPDATEs (`WHERE version = :expected`, `WHERE budget - reserved - paid >= :amount`) are
re-checked against the committed row after a lock wait, which is what makes them safe.
"""

from __future__ import annotations

import itertools
import random
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError

from jinqiu.workflow.config import get_settings, normalise_url, readable_url, resolve_database


def is_sqlite(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "sqlite"


# A PostgreSQL connection given back to the pool this recently is not pinged when it is taken
# out again (HikariCP's "alive bypass window", also 500 ms). Under load every checkout follows a
# use by milliseconds, and the ping was one more round trip of every request and dashboard; a
# connection idle for longer — one the server may have dropped — is pinged and replaced if dead.
ALIVE_WITHOUT_PING_S = 0.5


def make_engine(url: str | None = None, *, pool_size: int = 10, **kwargs: Any) -> Engine:
    url = readable_url(normalise_url(url or resolve_database().url))
    if make_url(url).get_backend_name() == "sqlite":
        return _sqlite_engine(url, **kwargs)
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size, **kwargs)

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        return _PostgresConnection.connect(*cargs, **cparams)

    @event.listens_for(engine, "checkin")
    def _given_back(dbapi_connection: Any, _record: Any) -> None:
        if dbapi_connection is not None:  # None: the connection was invalidated
            dbapi_connection.given_back_at = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _check(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if dbapi_connection.autocommit:
            # Left on by a transaction deferred to its first write (workflow.driver) whose end
            # SQLAlchemy never saw: no one else gets a connection whose writes commit alone.
            try:
                dbapi_connection.autocommit = False
            except psycopg.Error as busy:
                raise DisconnectionError(f"connection given back mid-statement: {busy}") from busy
        if time.monotonic() - dbapi_connection.given_back_at < ALIVE_WITHOUT_PING_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except psycopg.OperationalError as dropped:
            # The pool discards this connection and checks out another (SQLAlchemy's
            # "pessimistic" disconnect handling, as pool_pre_ping does it).
            raise DisconnectionError(
                f"connection dropped while in the pool: {dropped}"
            ) from dropped

    return engine


class _PostgresConnection(psycopg.Connection[Any]):
    """psycopg's connection, whose reads end with COMMIT.

    psycopg forgets every statement it prepared on a connection when a transaction ends with
    ROLLBACK (it cannot tell whether one was prepared in a transaction that failed), and every
    read ends with one: the pool's reset, or closing a connection that began a transaction. So
    a read — a dashboard, a list — was parsed and planned anew each time (about half of a
    dashboard's PostgreSQL CPU). A READ ONLY transaction that has not failed wrote nothing, by
    the database's own check: COMMIT ends it the same way and keeps the prepared statements. Any
    other transaction rolls back as before."""

    # When the pool last had the connection back (monotonic seconds); a new connection counts as
    # just answered by the server.
    given_back_at: float

    @classmethod
    def connect(cls, *args: Any, **kwargs: Any) -> _PostgresConnection:
        conn = super().connect(*args, **kwargs)
        conn.given_back_at = time.monotonic()
        return conn

    def rollback(self) -> None:
        if (
            self.read_only
            and self._pipeline is None
            and self.pgconn.transaction_status == TransactionStatus.INTRANS
        ):
            self.commit()
        else:
            super().rollback()


def _sqlite_engine(url: str, **kwargs: Any) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)
    synchronous = get_settings().sqlite_synchronous

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN IMMEDIATE instead of pysqlite's deferred BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        if mode == "IMMEDIATE":
            try:
                begin_immediate(conn.connection.dbapi_connection)
            except sqlite3.Error as error:  # as SQLAlchemy raises a failed statement's error
                raise DBAPIError.instance("BEGIN IMMEDIATE", None, error, sqlite3.Error) from error
        else:
            conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


# How long a write waits for SQLite's one write lock (as busy_timeout=30000 did), and the pauses
# between its tries. SQLite's own wait sleeps 1, 2, 5, 10 … 100 ms between tries, and a writer
# that arrives meanwhile takes the lock first: with 16 writes in flight, one in a hundred waited
# 0.5–1.3 s (bench http, SQLite). Tried here instead every 0.5–4 ms (with jitter, so waiters do
# not retry in step): a waiter is at most a few ms late for a free lock.
WRITE_LOCK_WAIT_S = 30.0
WRITE_LOCK_PAUSES_S = (0.0005, 0.001, 0.002, 0.004)


def begin_immediate(dbapi_connection: Any) -> None:
    """BEGIN IMMEDIATE on a SQLite connection, tried until it has the write lock or
    WRITE_LOCK_WAIT_S has passed ("database is locked", as SQLite's own timeout says)."""
    deadline = time.monotonic() + WRITE_LOCK_WAIT_S
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout=0")  # fail at once while the lock is held
        for tries in itertools.count():
            try:
                cursor.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as busy:
                if "locked" not in str(busy) or time.monotonic() >= deadline:
                    raise
            pause = WRITE_LOCK_PAUSES_S[min(tries, len(WRITE_LOCK_PAUSES_S) - 1)]
            time.sleep(pause * random.uniform(0.5, 1.5))  # jitter, not a secret
    finally:
        cursor.execute("PRAGMA busy_timeout=30000")  # the transaction's statements: as before
        cursor.close()


def for_writing(conn: Connection) -> Connection:
    """Marks the connection's transactions as writes: on SQLite the "begin" hook above issues
    BEGIN IMMEDIATE (when the transaction begins: explicitly, or at the first statement)."""
    # Set on the connection, in place: engine.execution_options() would build a new
    # OptionEngine per call, ~25 µs of CPU, a third of an empty transaction (docs/PERFORMANCE.md).
    if conn.get_execution_options().get("postgresql_readonly"):
        conn.execution_options(postgresql_readonly=False)  # a read until now (read_only, below)
    conn.execution_options(sqlite_begin="IMMEDIATE")
    return conn


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One unit of work that writes: commits when the block ends, rolls back on any error."""
    with engine.connect() as conn, for_writing(conn).begin():
        yield conn


def read_only(conn: Connection) -> Connection:
    """Marks the connection's transactions as reads: READ ONLY on PostgreSQL, so a write
    nobody declared is refused by the database, and the transaction ends with COMMIT, which
    keeps the connection's prepared statements (_PostgresConnection). Set before the
    transaction begins; undone when the connection goes back to the pool. SQLite's reads are
    deferred transactions already (nothing to mark)."""
    if conn.dialect.name == "postgresql":
        conn.execution_options(postgresql_readonly=True)
    return conn


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection for reads only (`read_only`), back to the pool when the block ends."""
    with engine.connect() as conn:
        yield read_only(conn)


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """Reads that see one instant, for checks comparing two tables (counters with cases):
    REPEATABLE READ on PostgreSQL, whose READ COMMITTED gives each statement its own; SQLite's
    deferred transaction in WAL mode is one snapshot already. Writes nothing, waits for no one."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            yield conn
