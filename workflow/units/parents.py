"""Each unit's parent, for the pre-aggregated rows that name it (the case counters and the
reminder counts): a dashboard reads a unit's children's rows as one range of an index by parent.
Units never change parent — a unit's path is fixed when it is made — so a row's parent is
written when the row is made and never updated."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, select

from jinqiu.workflow.driver import member_chunks, member_of
from jinqiu.workflow.units.models import Unit, path_codes

Parents = dict[str, str | None]  # unit code → its parent's code (None: a root)

unit_t = Unit.__table__  # type: ignore[attr-defined]
_parent_t = unit_t.alias("parent")


def parents_on(unit_path: str) -> Parents:
    """Each unit on the path with its parent: '/WH/WH-HC/' → {'WH': None, 'WH-HC': 'WH'}."""
    codes = path_codes(unit_path)
    return dict(zip(codes, [None, *codes[:-1]], strict=True))


def parents_of(conn: Connection, codes: Sequence[str]) -> Parents:
    """The units' parents, read from the units (a code no unit has: not in the answer)."""
    out: Parents = {}
    for part in member_chunks(conn, codes):
        out.update(
            conn.execute(
                select(unit_t.c.code, _parent_t.c.code)
                .outerjoin(_parent_t, _parent_t.c.id == unit_t.c.parent_id)
                .where(member_of(conn, unit_t.c.code, part))
            )
            .tuples()
            .all()
        )
    return out
