"""The pool's check of a PostgreSQL connection at checkout (`workflow.db`): a connection that
sat in the pool longer than ALIVE_WITHOUT_PING_S is pinged first, and replaced if the server
has dropped it; one given back moments ago is used as it is — under load every checkout follows
a use by milliseconds, and the ping was a round trip of every request and dashboard."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Connection, Engine, bindparam, column, literal, select, table, text, update
from sqlalchemy.exc import DBAPIError

from jinqiu.workflow.db import ALIVE_WITHOUT_PING_S, make_engine, reading
from jinqiu.workflow.driver import driver_batch, driver_first, driver_write

pytestmark = pytest.mark.postgres

LAST_STATEMENT = "SELECT query FROM pg_stat_activity WHERE pid = %s"
PING = ";"  # SQLAlchemy's ping of a psycopg connection: an empty statement


@pytest.fixture
def pool_of_one(postgres_schema_url: tuple[str, str]) -> Iterator[Engine]:
    url, schema = postgres_schema_url
    engine = make_engine(url, pool_size=1, connect_args={"options": f"-csearch_path={schema}"})
    engine.pool._max_overflow = 0  # type: ignore[attr-defined]  # the same connection every time
    yield engine
    engine.dispose()


@pytest.fixture
def admin(postgres_schema_url: tuple[str, str]) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    url, _schema = postgres_schema_url
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        yield conn


def backend_of(engine: Engine, marker: str) -> int:
    """The server process of the pool's connection, after a statement naming `marker`."""
    with reading(engine) as conn:
        return int(conn.execute(text(f"SELECT pg_backend_pid() /* {marker} */")).scalar_one())


def last_statement(admin: psycopg.Connection[tuple[object, ...]], pid: int) -> str:
    row = admin.execute(LAST_STATEMENT, (pid,)).fetchone()
    assert row is not None
    return str(row[0])


def test_a_connection_given_back_moments_ago_is_not_pinged(
    pool_of_one: Engine, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    pid = backend_of(pool_of_one, "first use")
    with pool_of_one.connect() as conn:  # checked out again at once: no statement yet
        assert last_statement(admin, pid) == "COMMIT"  # how the read before ended
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() == pid


def test_an_idle_connection_is_pinged_at_checkout(
    pool_of_one: Engine, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    pid = backend_of(pool_of_one, "first use")
    time.sleep(ALIVE_WITHOUT_PING_S + 0.1)
    with pool_of_one.connect() as conn:
        assert last_statement(admin, pid) == PING  # before the caller's statement
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() == pid


def test_an_idle_connection_the_server_dropped_is_replaced(
    pool_of_one: Engine, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    pid = backend_of(pool_of_one, "first use")
    admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    time.sleep(ALIVE_WITHOUT_PING_S + 0.1)
    replacement = backend_of(pool_of_one, "after the server dropped it")  # no error
    assert replacement != pid


def test_a_new_connection_is_not_pinged(
    pool_of_one: Engine, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    """A connection just opened was just answered by the server."""
    with pool_of_one.connect() as conn:
        pid = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
    assert pid > 0
    pool_of_one.dispose()
    time.sleep(ALIVE_WITHOUT_PING_S + 0.1)
    with pool_of_one.connect() as conn:
        fresh = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
        statement = last_statement(admin, fresh)
    assert statement == "SELECT pg_backend_pid()"


_T = table("t", column("id"), column("n"))
ON_THE_DRIVER: dict[str, Callable[[Connection], Any]] = {
    # SQLAlchemy's own statement, for comparison: the counters' "rollback" listener used to
    # reach the lost connection's `info` and fail the close with PendingRollbackError.
    "sqlalchemy": lambda conn: conn.execute(select(literal(1))),
    "driver_batch": lambda conn: driver_batch(conn, [(select(literal(1)), {})]),
    "driver_first": lambda conn: driver_first(conn, select(literal(1)), {}),
    "driver_write": lambda conn: driver_write(
        conn, update(_T).where(_T.c.id == bindparam("b_id")), {"b_id": 1, "n": 2}
    ),
}


@pytest.mark.parametrize("statement", ON_THE_DRIVER)
def test_a_connection_lost_under_a_statement_on_the_driver_is_not_handed_out_again(
    pool_of_one: Engine, admin: psycopg.Connection[tuple[object, ...]], statement: str
) -> None:
    """A statement on the driver's own cursor (`driver_batch`, `driver_first`, `driver_write`)
    fails as SQLAlchemy's error, and the connection it lost is not handed out again, however
    recently it came back (the pool's reset of a lost connection fails, and the pool discards
    it)."""
    pid = backend_of(pool_of_one, "first use")
    with pool_of_one.connect() as conn:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        time.sleep(0.2)  # the backend gone
        with pytest.raises(DBAPIError):
            ON_THE_DRIVER[statement](conn)
    assert backend_of(pool_of_one, "after") != pid  # at once, inside the window: no error
