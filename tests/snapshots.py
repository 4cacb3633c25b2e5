"""A seeded database kept aside and put back exactly: every row of every table as stored (SQLite:
the values as the file holds them; PostgreSQL: copies of the tables in a schema of their own),
and on PostgreSQL every sequence where it stood, so that what follows, ids included, is what
follows the seeding.

For tests that need the same seeded start many times over (a fuzzer's chains): putting the rows
back is a few INSERTs in one transaction, where seeding again runs the engine event by event."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from sqlalchemy import Engine, text

from jinqiu.workflow.db import transaction
from jinqiu.workflow.metadata import metadata
from tests.conftest import _wipe

_TABLES = [table.name for table in metadata.sorted_tables]  # parents before children
T = TypeVar("T")
_SEQUENCES = "SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()"


@dataclass(frozen=True)
class Snapshot:
    schema: str | None = None  # PostgreSQL: where the copies of the tables are
    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)  # SQLite: as stored
    sequences: dict[str, tuple[int, bool]] = field(default_factory=dict)  # last_value, is_called


def take(engine: Engine) -> Snapshot:
    """The database as it is now. On PostgreSQL call `drop` when done with it."""
    with transaction(engine) as conn:
        if engine.dialect.name != "postgresql":
            # Raw values, no type processing: a datetime goes back in the text it was written as.
            return Snapshot(
                rows={
                    name: [tuple(row) for row in conn.exec_driver_sql(f"SELECT * FROM {name}")]
                    for name in _TABLES
                }
            )
        schema = f"{conn.execute(text('SELECT current_schema()')).scalar_one()}_snap_{uuid.uuid4().hex[:8]}"
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        for name in _TABLES:
            conn.exec_driver_sql(f"CREATE TABLE {schema}.{name} AS SELECT * FROM {name}")
        sequences = {}
        for name in conn.execute(text(_SEQUENCES)).scalars().all():
            last, called = conn.exec_driver_sql(f"SELECT last_value, is_called FROM {name}").one()
            sequences[str(name)] = (int(last), bool(called))
        return Snapshot(schema=schema, sequences=sequences)


def restore(engine: Engine, snapshot: Snapshot) -> None:
    """Every table emptied and refilled from the snapshot; the sequences set back."""
    _wipe(engine)
    with transaction(engine) as conn:
        for name in _TABLES:
            if snapshot.schema is not None:
                conn.exec_driver_sql(f"INSERT INTO {name} SELECT * FROM {snapshot.schema}.{name}")
            elif snapshot.rows[name]:
                marks = ", ".join("?" * len(snapshot.rows[name][0]))
                conn.exec_driver_sql(f"INSERT INTO {name} VALUES ({marks})", snapshot.rows[name])
        # As a campaign loaded anew: a new cache key, so no rules compiled in this process
        # before the restore (perhaps from a row a test edited by hand) are taken for these.
        conn.execute(text("UPDATE campaign SET rules_token = :token"), {"token": uuid.uuid4().hex})
        for name, (last, called) in snapshot.sequences.items():
            conn.execute(
                text("SELECT setval(CAST(:name AS regclass), :last, :called)"),
                {"name": name, "last": last, "called": called},
            )


def drop(engine: Engine, snapshot: Snapshot) -> None:
    if snapshot.schema is not None:
        with transaction(engine) as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {snapshot.schema} CASCADE")


class Kept:
    """Seeded databases put aside by a module-scoped fixture, one per engine: the module's first
    test seeds, every later one gets exactly those rows back (and what the seeding returned).
    Only for a seed that starts from the emptied database, as `db` gives it."""

    def __init__(self) -> None:
        self._kept: dict[int, tuple[Engine, Snapshot, Any]] = {}

    def seeded(self, engine: Engine, seed: Callable[[], T]) -> T:
        kept = self._kept.get(id(engine))
        if kept is None:
            value = seed()
            self._kept[id(engine)] = (engine, take(engine), value)
            return value
        restore(engine, kept[1])
        return cast(T, kept[2])

    def drop(self) -> None:
        for engine, snapshot, _value in self._kept.values():
            drop(engine, snapshot)
        self._kept.clear()
