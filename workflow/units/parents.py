"""Each unit's parent read from the units, for the pre-aggregated rows that name it (the case
counters and the reminder counts) when they are repaired: a dashboard reads a unit's children's
rows as one range of an index by parent. Units never change parent — a unit's path is fixed
when it is made — so a transition takes the parents from its case's path
(`workflow.paths.parents_on`) and a row's parent is never updated."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, select

from jinqiu.workflow.driver import member_chunks, member_of
from jinqiu.workflow.paths import Parents
from jinqiu.workflow.units.models import Unit

unit_t = Unit.__table__  # type: ignore[attr-defined]
_parent_t = unit_t.alias("parent")


def parents_of(conn: Connection, codes: Sequence[str]) -> Parents:
    """The units' parents, read from the units (a code no unit has: not in the answer)."""
    out: Parents = {}
    for part in member_chunks(conn, codes):
        rows = conn.execute(
            select(unit_t.c.code, _parent_t.c.code)
            .outerjoin(_parent_t, _parent_t.c.id == unit_t.c.parent_id)
            .where(member_of(conn, unit_t.c.code, part))
        )
        out.update((code, parent) for code, parent in rows)
    return out
