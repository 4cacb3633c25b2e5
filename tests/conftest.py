"""One fixture for both databases: every test that takes `db` runs on SQLite and on PostgreSQL.

PostgreSQL is the server at 127.0.0.1:5432 (trust auth, database `test`), or
JINQIU_TEST_POSTGRES_URL. Each test session works in its own schema, dropped at the end.
In CI (CI=true) a missing server fails the run; on a laptop those tests skip, saying why.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings
from sqlalchemy import Engine, create_engine, text

from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.config import normalise_url
from jinqiu.workflow.db import make_engine, transaction
from jinqiu.workflow.metadata import metadata
from jinqiu.workflow.migrate import upgrade

if TYPE_CHECKING:
    from tests.snapshots import Kept

# Property tests assert behaviour, never speed: no per-example deadline (a loaded machine took
# 270 ms over the default 200 ms and failed a correct test).
settings.register_profile("jinqiu", deadline=None)
settings.load_profile("jinqiu")

POSTGRES_URL = os.environ.get(
    "JINQIU_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _postgres_problem() -> str | None:
    try:
        probe = create_engine(normalise_url(POSTGRES_URL))
        with probe.connect() as conn:
            conn.execute(text("select 1"))
        probe.dispose()
    except Exception as exc:  # any failure to reach it is the same answer
        return f"PostgreSQL not reachable at {POSTGRES_URL}: {exc.__class__.__name__}"
    return None


@pytest.fixture(scope="session")
def postgres_schema_url() -> Iterator[tuple[str, str]]:
    problem = _postgres_problem()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"{problem} — CI must run the PostgreSQL suite", pytrace=False)
        pytest.skip(f"{problem} (set JINQIU_TEST_POSTGRES_URL; CI never skips these)")
    schema = f"jq_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalise_url(POSTGRES_URL))
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield POSTGRES_URL, schema
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def postgres_engine(url: str, schema: str, pool_size: int = 30) -> Engine:
    """The tests' engine on `schema`. Its commits do not wait for the WAL to reach the disk
    (synchronous_commit=off: ~3 ms less a commit here): what only a crash of the server itself
    could show, and no test crashes it; transactions, locks and isolation are unchanged."""
    options = f"-csearch_path={schema} -csynchronous_commit=off"
    return make_engine(url, pool_size=pool_size, connect_args={"options": options})


@pytest.fixture(scope="session")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path: Path = tmp_path_factory.mktemp("db") / "jinqiu.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def pg_engine(postgres_schema_url: tuple[str, str]) -> Iterator[Engine]:
    url, schema = postgres_schema_url
    engine = postgres_engine(url, schema)
    upgrade(engine)
    yield engine
    engine.dispose()


_TABLES = list(reversed(metadata.sorted_tables))  # children before their parents
# One round trip: every table emptied, then every sequence of the schema restarted.
_POSTGRES_WIPE = "; ".join(
    [f"DELETE FROM {table.name}" for table in _TABLES]
    + [
        "DO $$ DECLARE name text; BEGIN"
        " FOR name IN SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()"
        " LOOP EXECUTE 'ALTER SEQUENCE ' || quote_ident(name) || ' RESTART'; END LOOP; END $$"
    ]
)


def _wipe(engine: Engine) -> None:
    """Every table emptied and, on PostgreSQL, every id counter back to its start. DELETE, not
    TRUNCATE: TRUNCATE gives each table new files (~0.3 s a test on this machine), where
    deleting a test's few rows costs a tenth of that, with the same result."""
    with transaction(engine) as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(_POSTGRES_WIPE)
        else:
            for table in _TABLES:
                conn.execute(table.delete())


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """An empty, migrated database: SQLite, then PostgreSQL."""
    name = "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    engine: Engine = request.getfixturevalue(name)
    _wipe(engine)
    yield engine


@pytest.fixture(scope="module")
def kept() -> Iterator[Kept]:
    """Seeded databases this module's tests share (tests/snapshots.py): the first test seeds,
    the others get the same rows back. Dropped at the module's end."""
    from tests.snapshots import Kept  # it builds on _wipe, above

    kept = Kept()
    yield kept
    kept.drop()


@pytest.fixture
def pg(pg_engine: Engine) -> Iterator[Engine]:
    """PostgreSQL only: for the concurrency tests, which need real parallel writers."""
    _wipe(pg_engine)
    yield pg_engine


@pytest.fixture
def clock() -> ManualClock:
    """Inside Weihai 2024's survey phase."""
    return ManualClock(dt.datetime(2024, 7, 20, 9, 0))


# -- databases of a test's own ----------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fresh(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """An empty database of its own, migrated by the test."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('mig') / 'jinqiu.db'}")
        yield engine
        engine.dispose()
        return
    url, _schema = request.getfixturevalue("postgres_schema_url")
    schema = f"jq_mig_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalise_url(url))
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine = postgres_engine(url, schema, pool_size=2)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def one_connection(postgres_schema_url: tuple[str, str], pg_engine: Engine) -> Iterator[Engine]:
    """An engine of one pooled connection on the tests' schema (pg_engine migrated it)."""
    url, schema = postgres_schema_url
    engine = make_engine(url, pool_size=1, connect_args={"options": f"-csearch_path={schema}"})
    engine.pool._max_overflow = 0  # type: ignore[attr-defined]  # one connection, every time
    yield engine
    engine.dispose()
