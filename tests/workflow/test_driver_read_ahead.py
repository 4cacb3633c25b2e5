"""A row read ahead (workflow.driver): a caller reads a row of its own and, in the same statement
on PostgreSQL, the row read next in the same transaction; that next read is answered from it
once, and never in another transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, bindparam, event, select, update

from jinqiu.workflow.db import transaction
from jinqiu.workflow.driver import (
    _READ_AHEAD,
    driver_first_read_ahead,
    driver_first_reading_ahead,
)
from jinqiu.workflow.units.models import Unit

unit_t = Unit.__table__  # type: ignore[attr-defined]
BY_CODE = select(unit_t.c.code, unit_t.c.level).where(unit_t.c.code == bindparam("code"))
NAME_OF = select(unit_t.c.name, unit_t.c.path).where(unit_t.c.code == bindparam("other"))


def seed(engine: Engine) -> None:
    with transaction(engine) as conn:
        for code, name in (("WH", "威海市总工会"), ("WH-HC", "环翠区总工会")):
            conn.execute(
                unit_t.insert().values(code=code, name=name, level="city", path=f"/{code}/")
            )


@contextmanager
def statements(conn: Connection) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    event.listen(conn, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(conn, "before_cursor_execute", record)


def test_the_row_read_ahead_answers_the_next_read_of_it_in_the_transaction(db: Engine) -> None:
    seed(db)
    postgres = db.dialect.name == "postgresql"
    with transaction(db) as conn, statements(conn) as seen:
        mine = driver_first_reading_ahead(
            conn, BY_CODE, {"code": "WH"}, NAME_OF, {"other": "WH-HC"}
        )
        assert mine == ("WH", "city")
        assert len(seen) == 1
        assert driver_first_read_ahead(conn, NAME_OF, {"other": "WH-HC"}) == (
            "环翠区总工会",
            "/WH-HC/",
        )
        assert len(seen) == (1 if postgres else 2)  # PostgreSQL: read in the first statement
        # once: the same read again goes to the database
        assert driver_first_read_ahead(conn, NAME_OF, {"other": "WH-HC"}) == (
            "环翠区总工会",
            "/WH-HC/",
        )
        assert len(seen) == (2 if postgres else 3)


def test_a_row_ahead_that_is_not_there_is_read_as_none(db: Engine) -> None:
    seed(db)
    with transaction(db) as conn, statements(conn) as seen:
        mine = driver_first_reading_ahead(conn, BY_CODE, {"code": "WH"}, NAME_OF, {"other": "NO"})
        assert mine == ("WH", "city")
        assert driver_first_read_ahead(conn, NAME_OF, {"other": "NO"}) is None
        assert len(seen) == (1 if db.dialect.name == "postgresql" else 2)


def test_nothing_is_kept_when_the_callers_own_row_is_not_there(db: Engine) -> None:
    seed(db)
    with transaction(db) as conn, statements(conn) as seen:
        assert (
            driver_first_reading_ahead(conn, BY_CODE, {"code": "NO"}, NAME_OF, {"other": "WH"})
            is None
        )
        assert driver_first_read_ahead(conn, NAME_OF, {"other": "WH"}) == ("威海市总工会", "/WH/")
        assert len(seen) == 2


def test_another_row_or_statement_is_read_from_the_database(db: Engine) -> None:
    seed(db)
    with transaction(db) as conn, statements(conn) as seen:
        driver_first_reading_ahead(conn, BY_CODE, {"code": "WH"}, NAME_OF, {"other": "WH-HC"})
        assert driver_first_read_ahead(conn, NAME_OF, {"other": "WH"}) == ("威海市总工会", "/WH/")
        assert len(seen) == 2


@pytest.mark.postgres
def test_a_row_kept_in_an_earlier_transaction_is_never_served(
    pg: Engine, one_connection: Engine
) -> None:
    """The same pooled connection, a later request: the row kept by a request whose engine never
    got to its load (refused before it) is as old as that request's transaction."""
    seed(one_connection)
    with transaction(one_connection) as conn:
        driver_first_reading_ahead(conn, BY_CODE, {"code": "WH"}, NAME_OF, {"other": "WH-HC"})
        first_backend = conn.connection.driver_connection
    with transaction(one_connection) as conn:
        conn.execute(update(unit_t).where(unit_t.c.code == "WH-HC").values(name="改名"))
    with transaction(one_connection) as conn, statements(conn) as seen:
        assert conn.connection.driver_connection is first_backend  # the same pooled connection
        assert driver_first_read_ahead(conn, NAME_OF, {"other": "WH-HC"}) == ("改名", "/WH-HC/")
        assert len(seen) == 1


def test_statements_that_share_a_parameter_name_are_refused(db: Engine) -> None:
    clash = select(unit_t.c.name).where(unit_t.c.code == bindparam("code"))
    with transaction(db) as conn:
        if db.dialect.name == "sqlite":  # read one after the other: no clash to refuse
            assert driver_first_reading_ahead(conn, BY_CODE, {"code": "WH"}, clash, {}) is None
            return
        with pytest.raises(ValueError, match="code"):
            driver_first_reading_ahead(conn, BY_CODE, {"code": "WH"}, clash, {"code": "WH"})


@pytest.mark.parametrize("end", ["commit", "rollback"])
def test_a_row_read_ahead_is_not_kept_past_its_transaction(db: Engine, end: str) -> None:
    """A case's row holds its family's identity numbers: one read ahead for a caller who was then
    refused (or whose event was) leaves the process's memory with the transaction, not when the
    pooled connection is next used."""
    seed(db)
    with db.connect() as conn:
        conn.begin()
        driver_first_reading_ahead(conn, BY_CODE, {"code": "WH"}, NAME_OF, {"other": "WH-HC"})
        getattr(conn, end)()
        assert _READ_AHEAD not in conn.info
