"""Read connections (`workflow.db.reading`): on PostgreSQL their transactions are READ ONLY,
so the database itself refuses a write nobody declared, and they end with COMMIT, which keeps
the statements psycopg prepared (it forgets them all on ROLLBACK, and a dashboard read every
few seconds would plan its statements anew each time)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from jinqiu.workflow.db import reading, transaction

pytestmark = pytest.mark.postgres

# psycopg prepares a statement the fifth time it runs on a connection (prepare_threshold).
PREPARED_AFTER = 5
PROBE = "SELECT count(*) FROM unit WHERE id > %(n)s"
PREPARED_COUNT = (
    "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%%FROM unit WHERE id >%%'"
)


def prepare_probe(engine: Engine) -> None:
    with reading(engine) as conn:
        for n in range(PREPARED_AFTER + 1):
            conn.exec_driver_sql(PROBE, {"n": n})


def prepared(engine: Engine) -> int:
    with reading(engine) as conn:
        return int(conn.exec_driver_sql(PREPARED_COUNT).scalar_one())


def test_a_read_keeps_its_prepared_statements_for_the_next(one_connection: Engine) -> None:
    prepare_probe(one_connection)
    assert prepared(one_connection) == 1
    # and the next read of the same statement uses it (no second one, no error)
    prepare_probe(one_connection)
    assert prepared(one_connection) == 1


def test_a_plain_connection_still_rolls_back_and_forgets_them(one_connection: Engine) -> None:
    """The default is unchanged: a connection not declared a read ends with ROLLBACK."""
    with one_connection.connect() as conn:
        for n in range(PREPARED_AFTER + 1):
            conn.exec_driver_sql(PROBE, {"n": n})
        assert int(conn.exec_driver_sql(PREPARED_COUNT).scalar_one()) == 1
    assert prepared(one_connection) == 0


# A row of a table nobody else in the tests' schema writes with this code.
INSERT = "INSERT INTO unit_count (unit_code, level, n) VALUES ('read-probe', 'x', 1)"
COUNT = "SELECT count(*) FROM unit_count WHERE unit_code = 'read-probe'"
DELETE = "DELETE FROM unit_count WHERE unit_code = 'read-probe'"


def test_a_read_refuses_a_write(one_connection: Engine) -> None:
    with reading(one_connection) as conn, pytest.raises(DBAPIError, match="read-only"):
        conn.exec_driver_sql(INSERT)
    with transaction(one_connection) as conn:  # nothing was written
        assert conn.exec_driver_sql(COUNT).scalar_one() == 0


def test_a_failed_read_rolls_back_and_the_connection_goes_on(one_connection: Engine) -> None:
    """A statement that failed leaves the transaction aborted: that one ends with ROLLBACK
    (psycopg then forgets its prepared statements, as it must: one prepared in the failed
    transaction may not exist), and the next read runs the same statements without error."""
    prepare_probe(one_connection)
    with reading(one_connection) as conn, pytest.raises(DBAPIError):
        conn.exec_driver_sql("SELECT 1 / 0")
    prepare_probe(one_connection)
    assert prepared(one_connection) == 1


def test_a_connection_back_from_a_read_writes_again(one_connection: Engine) -> None:
    """Read-only belongs to the read: the same pooled connection's next transaction writes."""
    prepare_probe(one_connection)
    with transaction(one_connection) as conn:
        conn.exec_driver_sql(INSERT)
    with reading(one_connection) as conn:
        assert conn.exec_driver_sql(COUNT).scalar_one() == 1
    with transaction(one_connection) as conn:
        conn.exec_driver_sql(DELETE)
