"""Pre-aggregated counts kept per ancestor unit (the dashboard's reminder, report and unit
counts; `cases/counters.py` keeps the case counts the same way): one multi-row upsert of
deltas, written in key order so that concurrent transactions lock the rows in one order and
cannot deadlock, and a comparison with a recount for `jinqiu counters verify`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Executable,
    Table,
    bindparam,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from jinqiu.workflow.paths import Parents, path_codes

Key = tuple[Any, ...]


@dataclass(frozen=True)
class Tally:
    """A table of counts `n` under a unique key (`keys`, in lock order). With `parent`, the
    column of that name holds the parent of the key's `unit_code`, written when a row is made
    (a dashboard reads a unit's children's rows by it)."""

    table: Table
    keys: tuple[str, ...]
    parent: str | None = None
    _upserts: dict[str, Executable] = field(default_factory=dict, compare=False, repr=False)

    def _upsert(self, dialect_name: str) -> Executable:
        name = "postgresql" if dialect_name == "postgresql" else "sqlite"
        if name not in self._upserts:  # built once per dialect: a new one is a new cache key
            if name == "postgresql":
                # One row per element of the arrays (unnest in the select list runs them in
                # step), in the order given: one statement and one round trip, however many
                # rows — a sweep's chunk adds to some 500 ancestors' counts.
                columns = self._columns()
                pg = pg_insert(self.table).from_select(
                    columns,
                    select(
                        *(
                            func.unnest(bindparam(c, type_=ARRAY(self.table.c[c].type)))
                            for c in columns
                        )
                    ),
                )
                statement: Any = pg
            else:
                statement = sqlite_insert(self.table)
            self._upserts[name] = statement.on_conflict_do_update(
                index_elements=list(self.keys),
                set_={"n": self.table.c.n + statement.excluded.n},
            )
        return self._upserts[name]

    def _columns(self) -> list[str]:
        return [*self.keys, *([self.parent] if self.parent else []), "n"]

    def add(
        self, conn: Connection, deltas: Mapping[Key, int], parents: Parents | None = None
    ) -> None:
        """Adds each delta to its row (made at 0 if missing), in key order, in one statement. A
        tally with a parent column makes a row with its unit's parent from `parents` (from the
        paths, `workflow.paths.parents_along`; a repair reads them from the units, `units.parents`)."""
        items = [(key, n) for key, n in sorted(deltas.items()) if n != 0]
        if not items:
            return
        values = [(*key, n) for key, n in items]
        if self.parent is not None:
            unit = self.keys.index("unit_code")
            if parents is None:
                raise ValueError(f"{self.table.name} names each unit's parent: give them")
            values = [(*key, parents.get(key[unit]), n) for key, n in items]
        columns = self._columns()
        if conn.dialect.name == "postgresql":
            arrays = {c: [row[i] for row in values] for i, c in enumerate(columns)}
            conn.execute(self._upsert("postgresql"), arrays)
            return
        rows = [dict(zip(columns, row, strict=True)) for row in values]
        conn.execute(self._upsert(conn.dialect.name), rows)

    def stored(self, conn: Connection, *where: ColumnElement[bool]) -> dict[Key, int]:
        columns = [self.table.c[k] for k in self.keys]
        return {
            tuple(row[:-1]): int(row[-1])
            for row in conn.execute(
                select(*columns, self.table.c.n).where(self.table.c.n != 0, *where)
            ).all()
        }

    def lock(self, conn: Connection) -> None:
        """Makes the caller the table's only writer until commit (a repair; SQLite's write
        transaction already is)."""
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"LOCK TABLE {self.table.name} IN EXCLUSIVE MODE"))


def per_ancestor(items: Iterable[tuple[Key, str, Key, int]]) -> dict[Key, int]:
    """(key before the unit, unit path, key after the unit, n) → n summed under the key
    (*before, code, *after) of every unit on the path, the unit itself included."""
    out: dict[Key, int] = {}
    for before, path, after, n in items:
        for code in path_codes(path):
            key = (*before, code, *after)
            out[key] = out.get(key, 0) + n
    return out


@dataclass(frozen=True, slots=True)
class TallyDifference:
    """A pre-aggregated count that does not say what its source rows say."""

    what: str  # the count: "reminders", "reports", "units"
    key: Key
    stored: int
    counted: int

    def describe(self) -> str:
        key = ", ".join(str(k) for k in self.key)
        return f"{self.what} {key}: counter {self.stored}, recount {self.counted}"


def differences(
    what: str, counted: Mapping[Key, int], kept: Mapping[Key, int]
) -> list[TallyDifference]:
    out = []
    for key in sorted(counted.keys() | kept.keys()):
        c, k = counted.get(key, 0), kept.get(key, 0)
        if c != k:
            out.append(TallyDifference(what, key, k, c))
    return out
