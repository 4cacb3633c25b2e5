"""Cases per (campaign, unit, state), for every unit on the case's path to the root, kept right
inside each transition's transaction — dashboards read a few counter rows, never scan cases.

One multi-row upsert per transaction (two rows per ancestor: −1 for the old state, +1 for the
new). Rows are written in (unit, state) order, so concurrent transactions lock them in the same
order and cannot deadlock.

The ancestors' rows (the city's, the province's) are shared by every transition of the
campaign, and a row's lock is held from its update to the commit. So a single transition's
deltas are kept on the connection and written by the commit itself (`_write_with_commit`): on
PostgreSQL the upsert and the COMMIT go in one pipeline, one round trip, and the lock is held
only while the server runs them — not while this process returns the answer to the event loop,
waits for the GIL and comes back to commit. A read of the counters in the same transaction
writes them first (`write_pending`), a rolled-back savepoint takes its deltas back."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, Executable, UniqueConstraint, event, func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlmodel import Field, SQLModel

from jinqiu.workflow.campaigns.models import Campaign
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.driver import member_chunks, member_of
from jinqiu.workflow.errors import NotFound
from jinqiu.workflow.units.models import Unit


class CaseCount(SQLModel, table=True):
    __tablename__ = "case_count"
    __table_args__ = (
        # No CHECK (n >= 0): SQLite checks it on the row an upsert proposes (n = -1) before the
        # conflict turns it into an update. The property test compares counters with a recount.
        UniqueConstraint("campaign_id", "unit_code", "state", name="uq_case_count"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    unit_code: str = Field(max_length=64)  # the unit and everything below it
    state: str = Field(max_length=20)
    n: int = 0


count_t = CaseCount.__table__  # type: ignore[attr-defined]
case_t = Case.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
campaign_t = Campaign.__table__  # type: ignore[attr-defined]


def path_codes(unit_path: str) -> list[str]:
    """'/WH/WH-HC/WH-HC-001/' → ['WH', 'WH-HC', 'WH-HC-001']."""
    return [code for code in unit_path.split("/") if code]


def _upsert_statement(dialect_name: str) -> Executable:
    dialect_insert = pg_insert if dialect_name == "postgresql" else sqlite_insert
    statement = dialect_insert(count_t)
    return statement.on_conflict_do_update(
        index_elements=["campaign_id", "unit_code", "state"],
        set_={"n": count_t.c.n + statement.excluded.n},
    )


# Built once per dialect: building it per transition (the `excluded` alias, the ON CONFLICT
# clause, a new cache key) cost more than executing it.
_UPSERTS = {name: _upsert_statement(name) for name in ("postgresql", "sqlite")}


def _upsert(conn: Connection, rows: list[dict[str, object]]) -> None:
    conn.execute(_UPSERTS["postgresql" if conn.dialect.name == "postgresql" else "sqlite"], rows)


# -- the deltas of the open transaction, written with its commit -----------------------------------
CounterKey = tuple[int, str, str]  # campaign, unit code, state
_PENDING = "jinqiu.case_count.pending"  # conn.info: CounterKey → delta, not yet written
_SAVEPOINTS = "jinqiu.case_count.savepoints"  # conn.info: the deltas as each open savepoint began

# One statement whatever the number of rows, in the order given (unnest in the select list runs
# the arrays in step): the lock order of every other writer of the rows.
_PG_UPSERT = (
    "INSERT INTO case_count (campaign_id, unit_code, state, n) "
    "SELECT unnest(%s::integer[]), unnest(%s::varchar[]), unnest(%s::varchar[]), "
    "unnest(%s::integer[]) "
    "ON CONFLICT (campaign_id, unit_code, state) DO UPDATE SET n = case_count.n + excluded.n"
)
_SQLITE_UPSERT = (
    "INSERT INTO case_count (campaign_id, unit_code, state, n) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (campaign_id, unit_code, state) DO UPDATE SET n = case_count.n + excluded.n"
)


def _take_pending(conn: Connection) -> list[tuple[int, str, str, int]]:
    """The connection's pending deltas in lock order, without the ones that came to 0; cleared."""
    pending: dict[CounterKey, int] = conn.info.pop(_PENDING, None) or {}
    return [(*key, n) for key, n in sorted(pending.items()) if n != 0]


def write_pending(conn: Connection) -> None:
    """Writes the transaction's counted moves now: before anything reads the counters in it."""
    rows = _take_pending(conn)
    if rows:
        _upsert(
            conn,
            [{"campaign_id": c, "unit_code": u, "state": s, "n": n} for c, u, s, n in rows],
        )


def _forget_pending(conn: Connection) -> None:
    conn.info.pop(_PENDING, None)
    conn.info.pop(_SAVEPOINTS, None)


def _write_with_commit(conn: Connection) -> None:
    """SQLAlchemy's "commit" event, just before the driver's COMMIT: the pending deltas in one
    upsert. On PostgreSQL the COMMIT is sent in the same pipeline (the driver's own commit that
    follows finds the transaction ended and sends nothing)."""
    conn.info.pop(_SAVEPOINTS, None)
    rows = _take_pending(conn)
    if not rows:
        return
    driver = conn.connection.driver_connection
    postgresql = conn.dialect.name == "postgresql"
    statement = _PG_UPSERT if postgresql else _SQLITE_UPSERT
    try:
        if postgresql:
            columns = [list(column) for column in zip(*rows, strict=True)]
            with driver.pipeline(), driver.cursor() as cursor:  # type: ignore[union-attr]
                cursor.execute(statement, columns)
                driver.commit()  # type: ignore[union-attr]
        else:
            driver.executemany(statement, rows)  # type: ignore[union-attr]
    except conn.dialect.loaded_dbapi.Error as error:
        # As SQLAlchemy raises a failed statement: callers catch its exception classes.
        raise DBAPIError.instance(
            statement, None, error, conn.dialect.loaded_dbapi.Error
        ) from error


def _savepoint(conn: Connection, _name: str | None) -> None:
    conn.info.setdefault(_SAVEPOINTS, []).append(dict(conn.info.get(_PENDING, {})))


def _rollback_savepoint(conn: Connection, _name: str, _context: object) -> None:
    saved = conn.info.get(_SAVEPOINTS)
    if saved:  # the moves counted since the savepoint are rolled back with it
        conn.info[_PENDING] = saved.pop()


def _release_savepoint(conn: Connection, _name: str, _context: object) -> None:
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
    for code in path_codes(unit_path):
        if old is not None:
            pending[(campaign_id, code, old)] = pending.get((campaign_id, code, old), 0) - 1
        pending[(campaign_id, code, new)] = pending.get((campaign_id, code, new), 0) + 1


def count_state_changes(
    conn: Connection, moves: Iterable[tuple[int, str, str | None, str]]
) -> None:
    """Many cases moved at once (a bulk transition): (campaign, unit path, old, new) each, summed
    per counter row first, so a district's 3,000 approvals are one row per ancestor and state."""
    deltas: dict[tuple[int, str, str], int] = {}
    for campaign_id, unit_path, old, new in moves:
        if old == new:
            continue
        for code in path_codes(unit_path):
            if old is not None:
                deltas[(campaign_id, code, old)] = deltas.get((campaign_id, code, old), 0) - 1
            deltas[(campaign_id, code, new)] = deltas.get((campaign_id, code, new), 0) + 1
    rows: list[dict[str, object]] = [
        {"campaign_id": campaign_id, "unit_code": code, "state": state, "n": n}
        for (campaign_id, code, state), n in sorted(deltas.items())
        if n != 0
    ]
    if rows:  # in (campaign, unit, state) order: the lock order of the single path's upserts
        _upsert(conn, rows)


def counts_for(
    conn: Connection, campaign_id: int, unit_codes: Iterable[str]
) -> dict[str, dict[str, int]]:
    write_pending(conn)
    codes = sorted(set(unit_codes))
    out: dict[str, dict[str, int]] = {code: {} for code in codes}
    for part in member_chunks(conn, codes):
        # .all(): one fetchall, not a driver fetchone per row (a district's 500 children
        # are ~4,500 rows)
        for code, state, n in conn.execute(
            select(count_t.c.unit_code, count_t.c.state, count_t.c.n).where(
                count_t.c.campaign_id == campaign_id,
                member_of(conn, count_t.c.unit_code, part),
                count_t.c.n != 0,
            )
        ).all():
            out[code][state] = n
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
    for row in conn.execute(
        select(count_t.c.unit_code, count_t.c.state, count_t.c.n).where(
            count_t.c.campaign_id == campaign_id, count_t.c.n != 0
        )
    ):
        out.setdefault(row.unit_code, {})[row.state] = int(row.n)
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
                *conn.execute(
                    select(count_t.c.campaign_id).where(count_t.c.n != 0).distinct()
                ).scalars(),
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
        conn.execute(text("LOCK TABLE case_count IN EXCLUSIVE MODE"))
    differences = counter_differences(conn, campaign_id)
    rows: list[dict[str, object]] = [
        {
            "campaign_id": d.campaign_id,
            "unit_code": d.unit_code,
            "state": d.state,
            "n": d.counted - d.stored,
        }
        for d in differences
    ]
    if rows:
        _upsert(conn, rows)
    return differences
