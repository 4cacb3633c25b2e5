"""A write on SQLite waits for the database's one write lock by trying BEGIN IMMEDIATE every
few milliseconds (workflow.db.begin_immediate) instead of SQLite's own sleeps of up to 100 ms:
it gets the lock once the holder lets go, gives up with "database is locked" after
WRITE_LOCK_WAIT_S, and leaves the connection's own busy timeout as it was."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from jinqiu.workflow import db as workflow_db
from jinqiu.workflow.db import for_writing, make_engine, transaction
from jinqiu.workflow.migrate import upgrade


@pytest.fixture
def sqlite(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'lock.db'}")
    upgrade(engine)
    return engine


def holding_the_lock(engine: Engine, release: threading.Event) -> threading.Event:
    """A thread that takes the write lock and holds it until `release`; returns when it holds."""
    holding = threading.Event()

    def hold() -> None:
        with engine.connect() as conn:
            for_writing(conn).exec_driver_sql("SELECT 1")
            holding.set()
            release.wait(timeout=30)
            conn.rollback()

    threading.Thread(target=hold, daemon=True).start()
    assert holding.wait(timeout=30)
    return holding


def test_a_write_gets_the_lock_once_its_holder_lets_go(sqlite: Engine) -> None:
    release = threading.Event()
    holding_the_lock(sqlite, release)
    threading.Timer(0.2, release.set).start()
    with transaction(sqlite) as conn:  # waits, then writes
        conn.exec_driver_sql("INSERT INTO unit_count (unit_code, level, n) VALUES ('w', 'x', 1)")
        assert release.is_set()  # it had to wait for the holder
    with sqlite.connect() as conn:
        assert (
            conn.exec_driver_sql("SELECT n FROM unit_count WHERE unit_code = 'w'").scalar_one() == 1
        )
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == 30000


def test_a_write_gives_up_when_the_lock_stays_held(
    sqlite: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workflow_db, "WRITE_LOCK_WAIT_S", 0.2)
    release = threading.Event()
    holding_the_lock(sqlite, release)
    try:
        with (
            pytest.raises(OperationalError, match="database is locked"),
            transaction(sqlite) as conn,
        ):
            conn.exec_driver_sql("SELECT 1")
    finally:
        release.set()
    with transaction(sqlite) as conn:  # and the next write, once the lock is free, goes through
        conn.exec_driver_sql("INSERT INTO unit_count (unit_code, level, n) VALUES ('g', 'x', 1)")
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == 30000
