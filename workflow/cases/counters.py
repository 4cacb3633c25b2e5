"""Cases per (campaign, unit) in each state, for every unit on the case's path to the root, kept
right inside each transition's transaction — dashboards read a few counter rows, never scan cases.

One row per unit, one column per state (`unit_case_count`): a move adds −1 to the old state's
column and +1 to the new one's, in one row per ancestor, and a dashboard reads one row per
child unit. One multi-row upsert per transaction, its rows in (campaign, unit) order, so
concurrent transactions lock them in the same order and cannot deadlock.

The ancestors' rows (the city's, the province's) are shared by every transition of the
campaign, and a row's lock is held from its update to the commit. So a single transition's
deltas are kept on the connection and written by the commit itself (`_write_with_commit`): on
PostgreSQL the upsert and the COMMIT go in one pipeline, one round trip, and the lock is held
only while the server runs them — not while this process returns the answer to the event loop,
waits for the GIL and comes back to commit. A read of the counters in the same transaction
writes them first (`write_pending`), a rolled-back savepoint takes its deltas back."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import compress
from typing import Any

from sqlalchemy import (
    CTE,
    Column,
    Connection,
    Engine,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Table,
    bindparam,
    column,
    event,
    exists,
    func,
    select,
    text,
    values,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

from jinqiu.states import CaseState
from jinqiu.workflow.campaigns.models import Campaign
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.driver import driver_of, member_chunks, member_of
from jinqiu.workflow.errors import NotFound
from jinqiu.workflow.paths import Parents, parents_on, path_codes
from jinqiu.workflow.units.models import Unit
from jinqiu.workflow.units.parents import parents_of

# The counted states, in the machine's order: the table's state columns. A state added to the
# machine needs its column added by a migration (test_the_migrated_table_is_the_model says so).
STATES: tuple[str, ...] = tuple(state.value for state in CaseState)
# The columns' names are written into SQL text below: the machine's names are plain identifiers.
assert all(re.fullmatch(r"[a-z][a-z_]*", state) for state in STATES)

unit_case_count = Table(
    "unit_case_count",
    SQLModel.metadata,
    Column("campaign_id", Integer, ForeignKey("campaign.id"), nullable=False),
    Column("unit_code", AutoString(length=64), nullable=False),  # the unit and all below it
    # No CHECK (n >= 0): SQLite checks it on the row an upsert proposes (−1 for a state of a
    # new row) before the conflict turns it into an update. The tests compare with a recount.
    *(Column(state, Integer, nullable=False, server_default=text("0")) for state in STATES),
    # The unit's parent (None: a root), written when the row is made: a dashboard reads its
    # children's rows as one range of the index below, not one probe of the key per child.
    Column("parent_code", AutoString(length=64), nullable=True),
    # An update touches no indexed column (units never change parent), so PostgreSQL rewrites
    # the row in place (HOT) without touching either index.
    PrimaryKeyConstraint("campaign_id", "unit_code", name="pk_unit_case_count"),
    Index("ix_unit_case_count_parent", "campaign_id", "parent_code"),
)
count_t = unit_case_count
case_t = Case.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
campaign_t = Campaign.__table__  # type: ignore[attr-defined]
_STATE_COLUMNS = [count_t.c[state] for state in STATES]


def states_of(row: Sequence[int]) -> dict[str, int]:
    """A row's state columns (in STATES order) as {state: n}, without the states at 0."""
    # strict=False: every caller selects all the state columns; the check was a tenth of the cost
    return dict(compress(zip(STATES, row, strict=False), row))


CounterKey = tuple[int, str, str]  # campaign, unit code, state


# Up to this many rows (a transition's unit and its ancestors) go to PostgreSQL as a VALUES list
# of plain parameters: psycopg adapts a list into an array in Python (~35 µs of a transition's
# CPU more than the same values one by one).
LISTED_ROWS = 8


@functools.cache
def _upsert_sql(postgresql: bool, states: tuple[str, ...], listed: int) -> str:
    """The upsert of the given state columns (the others keep their value, 0 in a new row); one
    text per set of states — a transition's is its two — and number of listed rows (0: the
    rows as arrays), so each is prepared once."""
    columns = ", ".join(("campaign_id", "unit_code", "parent_code", *states))
    width = 3 + len(states)
    if not postgresql:
        rows = "VALUES (" + ", ".join("?" * width) + ")"
    elif listed:
        rows = "VALUES " + ", ".join(["(" + ", ".join(["%s"] * width) + ")"] * listed)
    else:
        # One statement whatever the number of rows, in the order given (unnest in the select
        # list runs the arrays in step): the lock order of every other writer of the rows.
        arrays = [
            "%s::integer[]",
            "%s::varchar[]",
            "%s::varchar[]",
            *["%s::integer[]"] * len(states),
        ]
        rows = "SELECT " + ", ".join(f"unnest({a})" for a in arrays)
    added = ", ".join(f"{s} = unit_case_count.{s} + excluded.{s}" for s in states)
    return (
        f"INSERT INTO unit_case_count ({columns}) {rows} "
        f"ON CONFLICT (campaign_id, unit_code) DO UPDATE SET {added}"
    )


def _rows(
    deltas: Mapping[CounterKey, int], parents: Mapping[str, str | None]
) -> tuple[tuple[str, ...], list[list[Any]]] | None:
    """The states `deltas` change, and one row per (campaign, unit) in key order: campaign, unit,
    its parent (for a new row), then the delta of each of those states. None: every delta is 0."""
    kept = sorted((key, n) for key, n in deltas.items() if n != 0)
    if not kept:
        return None
    states = tuple(s for s in STATES if any(key[2] == s for key, _n in kept))
    column = {state: i for i, state in enumerate(states)}
    rows: list[list[Any]] = []
    for (campaign_id, code, state), n in kept:  # a unit's states come together (key order)
        if not rows or rows[-1][0] != campaign_id or rows[-1][1] != code:
            rows.append([campaign_id, code, parents.get(code), *[0] * len(states)])
        rows[-1][3 + column[state]] = n
    return states, rows


def _upsert_rows(
    deltas: Mapping[CounterKey, int], parents: Mapping[str, str | None], postgresql: bool
) -> tuple[str, Any] | None:
    """The statement and its parameters that add `deltas` to their rows, one row per (campaign,
    unit) in key order (a new row is made with the unit's parent from `parents`); None when every
    delta is 0."""
    found = _rows(deltas, parents)
    if found is None:
        return None
    states, rows = found
    if not postgresql:
        return _upsert_sql(False, states, 1), [tuple(row) for row in rows]
    if len(rows) <= LISTED_ROWS:
        # A tuple: one parameter set (a list would be read as many sets).
        return _upsert_sql(True, states, len(rows)), tuple(value for row in rows for value in row)
    return _upsert_sql(True, states, 0), tuple(list(values) for values in zip(*rows, strict=True))


def _upsert(
    conn: Connection, deltas: Mapping[CounterKey, int], parents: Mapping[str, str | None]
) -> None:
    upsert = _upsert_rows(deltas, parents, conn.dialect.name == "postgresql")
    if upsert is not None:
        conn.exec_driver_sql(*upsert)


# -- the deltas of the open transaction, written with its commit -----------------------------------
_PENDING = "jinqiu.case_count.pending"  # conn.info: CounterKey → delta, not yet written
_SAVEPOINTS = "jinqiu.case_count.savepoints"  # conn.info: the deltas as each open savepoint began
_PARENTS = "jinqiu.case_count.parents"  # conn.info: Parents of the pending deltas' units


def write_pending(conn: Connection) -> None:
    """Writes the transaction's counted moves now: before anything reads the counters in it."""
    pending: dict[CounterKey, int] | None = conn.info.pop(_PENDING, None)
    parents: Parents = conn.info.pop(_PARENTS, {})
    if pending:
        _upsert(conn, pending, parents)


def _forget_pending(conn: Connection) -> None:
    if conn.invalidated:
        # A lost connection: its `info` cannot be reached until the transaction is rolled back
        # (reaching it raised PendingRollbackError from the rollback itself, and the close that
        # ran it never gave the connection back). The next transaction's "begin" forgets them.
        return
    conn.info.pop(_PENDING, None)
    conn.info.pop(_SAVEPOINTS, None)
    conn.info.pop(_PARENTS, None)


def _write_with_commit(conn: Connection) -> None:
    """SQLAlchemy's "commit" event, just before the driver's COMMIT: the pending deltas in one
    upsert. On PostgreSQL the COMMIT is sent in the same pipeline, one round trip for both (the
    driver's own commit that follows finds the transaction ended and sends nothing)."""
    conn.info.pop(_SAVEPOINTS, None)
    pending: dict[CounterKey, int] | None = conn.info.pop(_PENDING, None)
    parents: Parents = conn.info.pop(_PARENTS, {})
    postgresql = conn.dialect.name == "postgresql"
    upsert = _upsert_rows(pending, parents, postgresql) if pending else None
    if upsert is None:
        return
    statement, parameters = upsert
    driver = driver_of(conn, writes=True)
    try:
        if postgresql:
            with driver.pipeline(), driver.cursor() as cursor:
                cursor.execute(statement, parameters)
                # COMMIT as a statement, not driver.commit(): psycopg's commit syncs the pipeline
                # and its exit then syncs again (a round trip with nothing in it); this way the
                # exit's one sync sends both. The driver then finds the transaction ended.
                cursor.execute("COMMIT", prepare=False)
        else:
            driver.executemany(statement, parameters)
    except conn.dialect.loaded_dbapi.Error as error:
        # As SQLAlchemy raises a failed statement: callers catch its exception classes.
        raise DBAPIError.instance(
            statement, None, error, conn.dialect.loaded_dbapi.Error
        ) from error


def _savepoint(conn: Connection, _name: str | None) -> None:
    if conn.invalidated:  # as in _forget_pending
        return
    conn.info.setdefault(_SAVEPOINTS, []).append(dict(conn.info.get(_PENDING, {})))


def _rollback_savepoint(conn: Connection, _name: str, _context: object) -> None:
    if conn.invalidated:  # as in _forget_pending
        return
    saved = conn.info.get(_SAVEPOINTS)
    if saved:  # the moves counted since the savepoint are rolled back with it
        conn.info[_PENDING] = saved.pop()


def _release_savepoint(conn: Connection, _name: str, _context: object) -> None:
    if conn.invalidated:  # as in _forget_pending
        return
    saved = conn.info.get(_SAVEPOINTS)
    if saved:
        saved.pop()


# On every engine: a transaction's deltas must reach the table however it is committed.
event.listen(Engine, "begin", _forget_pending)
event.listen(Engine, "rollback", _forget_pending)
event.listen(Engine, "commit", _write_with_commit)
event.listen(Engine, "savepoint", _savepoint)
event.listen(Engine, "rollback_savepoint", _rollback_savepoint)
event.listen(Engine, "release_savepoint", _release_savepoint)


def count_state_change(
    conn: Connection, campaign_id: int, unit_path: str, old: str | None, new: str
) -> None:
    """A case of the unit at `unit_path` moved from `old` (None: it was just created) to `new`:
    counted when the transaction commits (the module's docstring says why)."""
    if old == new:
        return
    pending: dict[CounterKey, int] = conn.info.setdefault(_PENDING, {})
    _add_move(pending, conn.info.setdefault(_PARENTS, {}), campaign_id, unit_path, old, new)


def _add_move(
    deltas: dict[CounterKey, int],
    parents: Parents,
    campaign_id: int,
    unit_path: str,
    old: str | None,
    new: str,
) -> None:
    """−1 to `old` (None: none) and +1 to `new` in every unit on the path, and their parents."""
    on_path = parents_on(unit_path)
    parents.update(on_path)
    for code in on_path:
        if old is not None:
            deltas[(campaign_id, code, old)] = deltas.get((campaign_id, code, old), 0) - 1
        deltas[(campaign_id, code, new)] = deltas.get((campaign_id, code, new), 0) + 1


def count_state_changes(
    conn: Connection, moves: Iterable[tuple[int, str, str | None, str]]
) -> None:
    """Many cases moved at once (a bulk transition): (campaign, unit path, old, new) each, summed
    per counter first, so a district's 3,000 approvals are one row per ancestor."""
    deltas: dict[tuple[int, str, str], int] = {}
    parents: Parents = {}
    for campaign_id, unit_path, old, new in moves:
        if old != new:
            _add_move(deltas, parents, campaign_id, unit_path, old, new)
    # in (campaign, unit) order: the lock order of the single path's upserts
    _upsert(conn, deltas, parents)


def counted_with(
    moved: CTE, campaign_id: int, unit_path: str, old: str | None, new: str
) -> tuple[CTE, dict[str, Any]] | None:
    """PostgreSQL: a case's move as a part of the one statement that writes its row (a transition
    written alone, workflow.engine.core): the upsert `count_state_change` would send with the
    commit, as a data-modifying CTE that adds the deltas only if `moved` (the row's
    version-checked UPDATE … RETURNING, a CTE) wrote the row; and its parameters. Its rows in
    key order, as every other writer of them locks them. None: the move changes no counter."""
    if old == new:
        return None
    deltas: dict[CounterKey, int] = {}
    parents: Parents = {}
    _add_move(deltas, parents, campaign_id, unit_path, old, new)
    found = _rows(deltas, parents)
    if found is None:
        return None
    states, rows = found
    columns = ("campaign_id", "unit_code", "parent_code", *states)
    params = {
        f"c{i}_{name}": value
        for i, row in enumerate(rows)
        for name, value in zip(columns, row, strict=True)
    }
    return _counted(moved, states, len(rows)), params


@functools.cache
def _counted(moved: CTE, states: tuple[str, ...], listed: int) -> CTE:
    """`INSERT … SELECT FROM (VALUES …) WHERE EXISTS (SELECT FROM moved) ON CONFLICT … DO UPDATE`
    as the CTE "counted", built once per (statement, states, number of rows): a handful."""
    columns = ("campaign_id", "unit_code", "parent_code", *states)
    rows = values(*(column(name, count_t.c[name].type) for name in columns), name="moves").data(
        [
            tuple(bindparam(f"c{i}_{name}", type_=count_t.c[name].type) for name in columns)
            for i in range(listed)
        ]
    )
    upsert = pg_insert(count_t).from_select(
        list(columns), select(rows).where(exists(select(*moved.c)))
    )
    return upsert.on_conflict_do_update(
        index_elements=[count_t.c.campaign_id, count_t.c.unit_code],
        set_={state: count_t.c[state] + upsert.excluded[state] for state in states},
    ).cte("counted")


def counts_for(
    conn: Connection, campaign_id: int, unit_codes: Iterable[str]
) -> dict[str, dict[str, int]]:
    write_pending(conn)
    codes = sorted(set(unit_codes))
    out: dict[str, dict[str, int]] = {code: {} for code in codes}
    for part in member_chunks(conn, codes):
        for code, *states in conn.execute(
            select(count_t.c.unit_code, *_STATE_COLUMNS).where(
                count_t.c.campaign_id == campaign_id, member_of(conn, count_t.c.unit_code, part)
            )
        ).all():
            out[code] = states_of(states)
    return out


def recount(conn: Connection, campaign_id: int) -> dict[str, dict[str, int]]:
    """The same figures from the cases themselves (tests and `jinqiu counters verify`)."""
    out: dict[str, dict[str, int]] = {}
    rows = conn.execute(
        select(unit_t.c.path, case_t.c.state, func.count())
        .join(unit_t, unit_t.c.id == case_t.c.unit_id)
        .where(case_t.c.campaign_id == campaign_id)
        .group_by(unit_t.c.path, case_t.c.state)
    )
    for path, state, n in rows:
        for code in path_codes(path):
            out.setdefault(code, {})
            out[code][state] = out[code].get(state, 0) + int(n)
    return out


def stored(conn: Connection, campaign_id: int) -> dict[str, dict[str, int]]:
    write_pending(conn)
    out: dict[str, dict[str, int]] = {}
    for code, *states in conn.execute(
        select(count_t.c.unit_code, *_STATE_COLUMNS).where(count_t.c.campaign_id == campaign_id)
    ):
        counted = states_of(states)
        if counted:
            out[code] = counted
    return out


@dataclass(frozen=True, slots=True)
class CounterDifference:
    """A counter that does not say what the cases say."""

    campaign_id: int
    unit_code: str
    state: str
    stored: int
    counted: int

    def describe(self) -> str:
        return (
            f"campaign {self.campaign_id}, unit {self.unit_code}, state {self.state}: "
            f"counter {self.stored}, cases {self.counted}"
        )


def counter_differences(
    conn: Connection, campaign_id: int | None = None
) -> list[CounterDifference]:
    """Every counter of the campaign (None: of every campaign) that differs from a recount of
    its cases, in (campaign, unit, state) order. Read both in one snapshot (`db.snapshot`, or
    a write transaction), or a transition committing in between shows as a difference."""
    write_pending(conn)
    if campaign_id is None:
        ids = sorted(
            {
                *conn.execute(select(case_t.c.campaign_id).distinct()).scalars(),
                *conn.execute(select(count_t.c.campaign_id).distinct()).scalars(),
            }
        )
    elif conn.execute(select(campaign_t.c.id).where(campaign_t.c.id == campaign_id)).first():
        ids = [campaign_id]
    else:  # a mistyped id must not answer "the counters match"
        raise NotFound(f"活动 {campaign_id} 不存在")
    out: list[CounterDifference] = []
    for cid in ids:
        counted, kept = recount(conn, cid), stored(conn, cid)
        for code in sorted(counted.keys() | kept.keys()):
            states = counted.get(code, {}).keys() | kept.get(code, {}).keys()
            for state in sorted(states):
                c, k = counted.get(code, {}).get(state, 0), kept.get(code, {}).get(state, 0)
                if c != k:
                    out.append(CounterDifference(cid, code, state, k, c))
    return out


def repair_counters(conn: Connection, campaign_id: int | None = None) -> list[CounterDifference]:
    """Sets every differing counter to the recount of its cases; returns what it changed. Runs
    inside the caller's write transaction, which it first makes the counters' only writer:
    SQLite's BEGIN IMMEDIATE is already; on PostgreSQL the table lock waits for the transitions
    that have counted and holds back the others until commit, which then add their own change
    to the repaired figure (the repair adds differences, it does not overwrite)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("LOCK TABLE unit_case_count IN EXCLUSIVE MODE"))
    differences = counter_differences(conn, campaign_id)
    _upsert(
        conn,
        {(d.campaign_id, d.unit_code, d.state): d.counted - d.stored for d in differences},
        parents_of(conn, sorted({d.unit_code for d in differences})),
    )
    return differences
