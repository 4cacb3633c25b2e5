"""A transaction begun by its first write (workflow.driver.defer_transaction, PostgreSQL): reads
before it run alone, with no BEGIN; the first write begins the transaction, or — sent as the unit
of work's only write — runs alone and is committed by the server; nothing is sent after that; and
no connection goes back to the pool, or out of it, with its statements still committing alone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import Connection, Engine, bindparam, func, insert, select

from jinqiu.workflow.db import transaction
from jinqiu.workflow.driver import defer_transaction, driver_first, driver_write, writes_alone
from jinqiu.workflow.units.models import Unit

unit_t = Unit.__table__  # type: ignore[attr-defined]
BY_CODE = select(unit_t.c.code).where(unit_t.c.code == bindparam("code"))
NEW_UNIT = insert(unit_t)


def new_unit(code: str) -> dict[str, str]:
    return {"code": code, "name": f"{code}工会", "level": "city", "path": f"/{code}/"}


def units(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(unit_t.c.code).order_by(unit_t.c.code)).scalars())


def status(conn: Connection) -> TransactionStatus:
    return conn.connection.driver_connection.info.transaction_status  # type: ignore[union-attr]


@pytest.fixture
def deferred(pg: Engine) -> Iterator[Connection]:
    """A connection whose transaction waits for its first write, as an event request's does."""
    with pg.connect() as conn:
        defer_transaction(conn)
        yield conn


@pytest.mark.postgres
def test_a_read_needs_no_begin_and_a_write_begins_the_transaction(
    pg: Engine, deferred: Connection
) -> None:
    assert driver_first(deferred, BY_CODE, {"code": "WH"}) is None
    assert status(deferred) == TransactionStatus.IDLE  # no BEGIN was sent
    assert writes_alone(deferred)
    deferred.execute(NEW_UNIT, new_unit("WH"))  # SQLAlchemy's statement: taken as a write
    assert status(deferred) == TransactionStatus.INTRANS
    assert not writes_alone(deferred)
    assert units(pg) == []  # not committed: another connection does not see it
    deferred.rollback()
    assert units(pg) == []
    assert deferred.connection.driver_connection.autocommit is False  # type: ignore[union-attr]


@pytest.mark.postgres
def test_a_write_on_the_driver_begins_the_transaction_too(pg: Engine, deferred: Connection) -> None:
    driver_write(deferred, NEW_UNIT, new_unit("WH"))
    assert status(deferred) == TransactionStatus.INTRANS
    deferred.rollback()
    assert units(pg) == []


@pytest.mark.postgres
def test_a_write_sent_alone_is_committed_by_the_server_and_ends_the_unit_of_work(
    pg: Engine, deferred: Connection
) -> None:
    driver_first(deferred, BY_CODE, {"code": "WH"})
    assert driver_write(deferred, NEW_UNIT, new_unit("WH"), alone=True) == 1
    assert status(deferred) == TransactionStatus.IDLE
    assert units(pg) == ["WH"]  # committed as it ended, before anyone called commit
    with pytest.raises(RuntimeError, match="after the unit of work's one write"):
        deferred.execute(NEW_UNIT, new_unit("WH-HC"))
    with pytest.raises(RuntimeError, match="after the unit of work's one write"):
        driver_first(deferred, BY_CODE, {"code": "WH"})
    deferred.commit()  # the request's commit: nothing left to send
    assert units(pg) == ["WH"]
    # The next transaction on the connection begins as any other does.
    deferred.execute(NEW_UNIT, new_unit("WH-HC"))
    assert status(deferred) == TransactionStatus.INTRANS
    deferred.rollback()
    assert units(pg) == ["WH"]


@pytest.mark.postgres
def test_a_failed_write_sent_alone_leaves_nothing(pg: Engine, deferred: Connection) -> None:
    with transaction(pg) as conn:
        conn.execute(NEW_UNIT, new_unit("WH"))
    with pytest.raises(Exception, match="duplicate key"):
        driver_write(deferred, NEW_UNIT, new_unit("WH"), alone=True)
    deferred.rollback()
    assert units(pg) == ["WH"]


@pytest.mark.postgres
def test_alone_without_a_deferred_transaction_is_one_more_statement_of_it(pg: Engine) -> None:
    with pg.connect() as conn:
        conn.begin()
        driver_write(conn, NEW_UNIT, new_unit("WH"), alone=True)
        driver_write(conn, NEW_UNIT, new_unit("WH-HC"))
        conn.rollback()
    assert units(pg) == []


@pytest.mark.postgres
@pytest.mark.parametrize("end", ["commit", "rollback"])
def test_the_transactions_end_ends_the_deferral(pg: Engine, deferred: Connection, end: str) -> None:
    driver_first(deferred, BY_CODE, {"code": "WH"})
    getattr(deferred, end)()
    assert not writes_alone(deferred)
    deferred.execute(NEW_UNIT, new_unit("WH"))
    assert status(deferred) == TransactionStatus.INTRANS  # a transaction: BEGIN was sent
    deferred.rollback()
    assert units(pg) == []


@pytest.mark.postgres
def test_the_pool_never_hands_out_a_connection_whose_statements_commit_alone(
    one_connection: Engine,
) -> None:
    """Whatever path gave it back (here: deferred with no statement, so SQLAlchemy saw no
    transaction end), the next checkout of the same connection writes in a transaction."""
    with one_connection.connect() as conn:
        defer_transaction(conn)
        first = conn.connection.driver_connection
        conn.info.clear()  # as if its end had not been seen
        first.autocommit = True  # type: ignore[union-attr]
    with one_connection.connect() as conn:
        assert conn.connection.driver_connection is first
        assert first.autocommit is False  # type: ignore[union-attr]
        conn.execute(NEW_UNIT, new_unit("WH"))
        conn.rollback()
    assert units(one_connection) == []


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_sqlite_has_no_deferral(db: Engine) -> None:
    with db.connect() as conn:
        defer_transaction(conn)
        assert not writes_alone(conn)
        driver_write(conn, NEW_UNIT, new_unit("WH"), alone=True)
        conn.rollback()
        assert conn.execute(select(func.count()).select_from(unit_t)).scalar_one() == 0
