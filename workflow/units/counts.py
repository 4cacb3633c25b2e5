"""Units per (ancestor unit, level): how many units of each level a subtree holds, the unit
itself included — so a dashboard counts the units a report deadline falls on in its subtree by
reading a few rows, not the subtree. Kept in the transaction that creates a unit (units are
never moved or deleted); `jinqiu counters verify` compares them with a recount."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, UniqueConstraint, select
from sqlmodel import Field, SQLModel

from jinqiu.workflow.tally import Tally, TallyDifference, differences, per_ancestor
from jinqiu.workflow.units.models import Unit


class UnitCount(SQLModel, table=True):
    __tablename__ = "unit_count"
    __table_args__ = (UniqueConstraint("unit_code", "level", name="uq_unit_count"),)

    id: int | None = Field(default=None, primary_key=True)
    unit_code: str = Field(max_length=64)  # the unit and everything below it
    level: str = Field(max_length=20)
    n: int = 0


unit_t = Unit.__table__  # type: ignore[attr-defined]
UNIT_COUNTS = Tally(UnitCount.__table__, ("unit_code", "level"))  # type: ignore[attr-defined]


def count_new_units(conn: Connection, units: Iterable[tuple[str, str]]) -> None:
    """Units just created, as (path, level): each counts for every unit on its path."""
    UNIT_COUNTS.add(conn, per_ancestor(((), path, (level,), 1) for path, level in units))


def levels_in_subtree(conn: Connection, code: str) -> dict[str, int]:
    """Units per level in the subtree of the unit `code` (itself included)."""
    return {
        key[1]: n
        for key, n in UNIT_COUNTS.stored(conn, UNIT_COUNTS.table.c.unit_code == code).items()
    }


def recount(conn: Connection) -> dict[tuple[str, str], int]:
    rows = conn.execute(select(unit_t.c.path, unit_t.c.level))
    return per_ancestor(((), path, (level,), 1) for path, level in rows)


def unit_count_differences(conn: Connection) -> list[TallyDifference]:
    return differences("units", recount(conn), UNIT_COUNTS.stored(conn))


def rebuild(conn: Connection) -> list[TallyDifference]:
    """Sets every differing count to the recount (after units were written around
    `create_unit`: the demo's tree, `jinqiu counters verify --repair`)."""
    UNIT_COUNTS.lock(conn)
    found = unit_count_differences(conn)
    UNIT_COUNTS.add(conn, {d.key: d.counted - d.stored for d in found})
    return found
