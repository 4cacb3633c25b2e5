"""Rows as the DB-API driver takes and gives them, for the hot paths.

On SQLite most of a statement's cost is SQLAlchemy's own per-statement and per-row work (result
rows, type processing, cache keys), not the database's. The engine's hot paths (the
version-checked UPDATE, the audit INSERTs, a bulk event's read of its subjects) therefore hand
SQLite prepared SQL on the DB-API cursor, inside the same SQLAlchemy transaction (its cursor
events still fire), applying each column's own bind or result processing — once per distinct
value, as a bulk repeats the same instant, date and category list thousands of times.
On PostgreSQL a single transition's statements (the caller's read, the case's load, the
version-checked UPDATE with its audit entry) go to psycopg's cursor the same way
(`driver_first`, `driver_write`): one row each, where SQLAlchemy's execution context and result
cost more than psycopg's own work. Reads of many rows keep SQLAlchemy's path there."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import (
    ARRAY,
    JSON,
    ColumnElement,
    CompoundSelect,
    Connection,
    Engine,
    Select,
    Table,
    any_,
    bindparam,
    event,
    func,
    select,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler

AnySelect = Select[Any] | CompoundSelect[Any]

# JSON as the audit hashes it (sorted keys, no spaces, UTF-8 kept); one encoder for every call
# (json.dumps with options builds a new one per call).
canonical_json = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode


def processed_rows(
    conn: Connection, table: Table, keys: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> list[tuple[Any, ...]]:
    """`rows` (dicts with `keys`) as tuples the driver binds: each column's bind processing
    (UTC datetimes, JSON, dates) applied once per distinct value of the column."""
    return list(zip(*processed_columns(conn, table, keys, rows), strict=True))


def processed_columns(
    conn: Connection, table: Table, keys: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> list[list[Any]]:
    """The same values as `processed_rows`, one list per key."""
    cache_key = (table, tuple(keys), conn.dialect.name)
    processors = _bind_processors.get(cache_key)
    if processors is None:  # asked on every SQLite transition: looked up once per column set
        processors = _bind_processors[cache_key] = [
            (_bind_processor(table.c[k].type, conn.dialect) if k in table.c else None) for k in keys
        ]
    return [
        _bound([row[key] for row in rows], process)
        for key, process in zip(keys, processors, strict=True)
    ]


def unnest(
    conn: Connection, table: Table, keys: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> tuple[str, tuple[list[Any], ...]]:
    """PostgreSQL: `unnest(CAST(%b AS type[]), …)` over the rows, one array parameter per column
    (typed by the table's column of that name, or as ARRAY_TYPED_AS says), and those parameters. The
    statement stays short and the same for any number of rows: psycopg parses and prepares it
    once, where a VALUES list of 1,000 rows is a new 10,000-placeholder statement to parse (on
    both sides) every time."""
    # %b: binary arrays (text ones escape each element by regular expression: 2/3 of the cost).
    arrays = ", ".join(f"CAST(%b AS {_array_type(conn.dialect, table, k)})" for k in keys)
    return f"unnest({arrays})", tuple(processed_columns(conn, table, keys, rows))


def any_of(column: ColumnElement[Any], values: Sequence[Any]) -> ColumnElement[bool]:
    """PostgreSQL: `column = ANY(:array)` — one parameter however many values (an IN list is
    one placeholder per value, a new statement to parse for every length)."""
    return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))


def member_of(
    conn: Connection, column: ColumnElement[Any], values: Sequence[Any]
) -> ColumnElement[bool]:
    """`column IN values`: on PostgreSQL `= ANY(:array)` (one statement text for any number of
    values, parsed and planned once), on SQLite an IN list (at most 999 values: the caller
    chunks)."""
    if conn.dialect.name == "postgresql":
        return any_of(column, values)
    return column.in_(values)


# Values per statement for `member_of`: SQLite's bound-parameter limit; PostgreSQL takes them all.
def member_chunks(conn: Connection, values: Sequence[Any]) -> list[Sequence[Any]]:
    if conn.dialect.name == "postgresql":
        return [values]
    return [values[i : i + 900] for i in range(0, len(values), 900)]


def probed_by_key(
    conn: Connection,
    columns: Sequence[ColumnElement[Any]],
    key: ColumnElement[Any],
    keys: Sequence[Any],
    *conditions: ColumnElement[bool],
) -> Select[Any]:
    """`SELECT columns WHERE key IN (keys) AND conditions`, for conditions that with `key = ?`
    match one row through a unique index. SQLite probes that index for an IN list already. On
    PostgreSQL the same query, inside a transaction that wrote the rows it reads, is planned from
    statistics that have never seen them: a scan of the first column's other index for every
    lookup (an import grew quadratic). There it is one LIMIT 1 probe per key, joined laterally
    from `unnest(keys)`: equality on every column of the unique index, whatever the statistics."""
    if conn.dialect.name != "postgresql":
        return select(*columns).where(key.in_(keys), *conditions)
    wanted = (
        # each key once: a repeated key would repeat its row, where IN gives it once
        func.unnest(bindparam(None, list(dict.fromkeys(keys)), type_=ARRAY(key.type)))
        .table_valued("value")
        .render_derived(name="wanted")
    )
    probe = select(*columns).where(key == wanted.c.value, *conditions).limit(1).lateral("probe")
    return select(*probe.c).select_from(wanted).join(probe, true())


def id_in(column: ColumnElement[Any], name: str, dialect: str) -> ColumnElement[bool]:
    """`column IN :name` for a statement built once per dialect: PostgreSQL `= ANY(:name)`,
    SQLite an expanding IN (`plain_rows` renders it)."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


def _array_type(dialect: Dialect, table: Table, key: str) -> str:
    column = table.c.get(key)
    if column is None:
        column = table.c.get(ARRAY_TYPED_AS.get(key, key))
    if column is None:
        raise KeyError(f"no column of {table.name} types {key!r}")
    return f"{column.type.compile(dialect)}[]"


# Keys that are not columns, typed as one: a version-checked write's expected version.
ARRAY_TYPED_AS = {"expected": "version"}


def _bind_processor(type_: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    """SQLite: the dialect's own processing (datetimes as SQLAlchemy writes them, with six
    digits of microseconds, so text comparisons with its bound parameters hold). PostgreSQL:
    the generic type's, JSON as canonical text (cast by the statement: arrays and VALUES lists
    carry no per-value type)."""
    if dialect.name == "sqlite":
        return type_.dialect_impl(dialect).bind_processor(dialect)  # type: ignore[no-any-return]
    if isinstance(type_, JSON):
        return canonical_json
    return type_.bind_processor(dialect)  # type: ignore[no-any-return]


def _bound(values: list[Any], process: Callable[[Any], Any] | None) -> list[Any]:
    if process is None:
        return values
    # Hashable values (dates, instants, texts) by value: an import's rows repeat the same dates
    # as different objects. Dicts and lists by identity: a bulk shares one among its rows.
    by_value: dict[Any, Any] = {}
    by_id: dict[int, Any] = {}
    out: list[Any] = []
    for value in values:
        if value is None:
            out.append(None)
        elif value.__hash__ is not None:
            if value not in by_value:
                by_value[value] = process(value)
            out.append(by_value[value])
        else:
            key = id(value)
            if key not in by_id:
                by_id[key] = process(value)
            out.append(by_id[key])
    return out


def driver_rows(
    conn: Connection, statement: AnySelect, params: Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    """The rows of a SELECT as the driver's tuples, for columns that need no result processing
    on either database (texts, integers): SQLAlchemy's Row for each costs ~0.25 µs (a district
    dashboard's ~3,000 counter rows: 2.3 -> 1.6 ms of CPU to read them). On PostgreSQL the
    statement, compiled once, goes to a cursor of the driver that asks for binary results:
    integers are read without parsing their text (a district dashboard's ~500 rows of 20 values:
    0.8 -> 0.45 ms); psycopg prepares it as it prepares every statement run often."""
    if conn.dialect.name == "postgresql":
        compiled, _processors = _compiled(conn.dialect, statement)
        driver = driver_of(conn, writes=False)
        with driver.cursor(binary=True) as cursor:
            cursor.execute(compiled.string, compiled.construct_params(params))
            return list(cursor.fetchall())
    result = conn.execute(statement, params)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def driver_batch(
    conn: Connection, queries: Sequence[tuple[AnySelect, Mapping[str, Any]]]
) -> list[list[tuple[Any, ...]]]:
    """The rows of several independent SELECTs, as `driver_rows` gives each. On PostgreSQL they
    go out in one pipeline: one round trip for all of them, where one each costs a wait on both
    sides (with readers queueing on two cores, the waits and wake-ups were a dashboard's largest
    cost after its rows). SQLite runs them one after the other (no network to save).

    Run it once a statement through SQLAlchemy has begun the transaction: a statement on the
    driver does not tell SQLAlchemy that one began (it would then change `read_only` inside it)."""
    if conn.dialect.name != "postgresql":
        return [driver_rows(conn, statement, params) for statement, params in queries]
    driver = driver_of(conn, writes=False)
    cursors = [driver.cursor(binary=True) for _ in queries]
    try:
        with driver.pipeline():
            for cursor, (statement, params) in zip(cursors, queries, strict=True):
                compiled, _processors = _compiled(conn.dialect, statement)
                cursor.execute(compiled.string, compiled.construct_params(params))
        return [list(cursor.fetchall()) for cursor in cursors]
    except conn.dialect.loaded_dbapi.Error as error:
        raise _failed(conn, "driver_batch", None, error) from error
    finally:
        for cursor in cursors:
            cursor.close()


def plain_rows(
    conn: Connection, statement: Select[Any], params: Mapping[str, Any]
) -> Sequence[Sequence[Any]]:
    """The rows of a SELECT, each indexable by position in the order of its columns. SQLite:
    compiled once, run on the cursor, each column's result processing (dates from text, JSON,
    booleans) applied once per distinct raw value. PostgreSQL: SQLAlchemy's rows."""
    if conn.dialect.name != "sqlite":
        return conn.execute(statement, params).all()
    compiled, processors = _compiled(conn.dialect, statement)
    expanded = compiled.construct_expanded_state(dict(params))  # expanding IN lists rendered
    raw = conn.exec_driver_sql(expanded.statement, expanded.positional_parameters).all()
    active: list[tuple[int, Callable[[Any], Any], dict[Any, Any]]] = [
        (i, process, {}) for i, process in enumerate(processors) if process is not None
    ]
    if not active or not raw:
        return raw
    # Column by column: each processed column is one list comprehension over its raw values.
    columns: list[Sequence[Any]] = list(zip(*raw, strict=True))
    for i, process, memo in active:  # memo: the column's raw values already processed
        columns[i] = [
            None if value is None else memo[value] if value in memo else _memo(memo, value, process)
            for value in columns[i]
        ]
    return list(zip(*columns, strict=True))


def _memo(memo: dict[Any, Any], value: Any, process: Callable[[Any], Any]) -> Any:
    done = memo[value] = process(value)
    return done


def _compiled(
    dialect: Dialect, statement: AnySelect
) -> tuple[SQLCompiler, list[Callable[[Any], Any] | None]]:
    found = _selects.get((dialect.name, statement))
    if found is None:
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        processors: list[Callable[[Any], Any] | None] = [
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in statement.selected_columns
        ]
        found = _selects[(dialect.name, statement)] = (compiled, processors)
    return found


_UNSET = object()
_bind_processors: dict[tuple[Table, tuple[str, ...], str], list[Any]] = {}
_selects: dict[tuple[str, AnySelect], tuple[SQLCompiler, list[Callable[[Any], Any] | None]]] = {}


# Set-based inserts of new rows whose ids are drawn first (the survey import's cases): the ids
# are known before the rows go in, so rows that point at each other (a case at its worker, an
# audit entry at its case, the case at its chain's head) are written once, with no RETURNING
# in order and no UPDATE after.


def new_ids(conn: Connection, table: Table, count: int) -> list[int]:
    """`count` ids for new rows of `table`. PostgreSQL: drawn from the id column's sequence.
    SQLite: the ones after the largest, which only this transaction can use: a writing
    transaction holds the database's write lock (workflow/db.py begins it IMMEDIATE), and one
    that began reading is refused at its first write if another wrote meanwhile."""
    if count <= 0:
        return []
    name = conn.dialect.identifier_preparer.format_table(table)
    if conn.dialect.name == "postgresql":
        drawn = conn.exec_driver_sql(
            "SELECT nextval(pg_get_serial_sequence(%(t)s, 'id')) FROM generate_series(1, %(n)s)",
            {"t": name, "n": count},
        ).scalars()
        return [int(i) for i in drawn]
    last = conn.exec_driver_sql(f"SELECT coalesce(max(id), 0) FROM {name}").scalar_one()
    return list(range(int(last) + 1, int(last) + 1 + count))


def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """`rows` (dicts with the same keys) into `table` in one statement; a column left out takes
    its scalar default (as SQLAlchemy's insert would give it). SQLite: the driver's executemany
    with each column's bind processing; PostgreSQL: INSERT … SELECT FROM unnest, one typed
    array per column."""
    if not rows:
        return
    defaults = _scalar_defaults(table)
    missing = {k: v for k, v in defaults.items() if k not in rows[0]}
    if missing:
        rows = [{**missing, **row} for row in rows]
    keys = tuple(rows[0])
    preparer = conn.dialect.identifier_preparer
    into = f"INSERT INTO {preparer.format_table(table)} ({', '.join(map(preparer.quote, keys))})"
    if conn.dialect.name == "postgresql":
        source, arrays = unnest(conn, table, keys, rows)
        conn.exec_driver_sql(f"{into} SELECT * FROM {source}", arrays)
        return
    values = ", ".join(["?"] * len(keys))
    conn.exec_driver_sql(f"{into} VALUES ({values})", processed_rows(conn, table, keys, rows))


def _scalar_defaults(table: Table) -> dict[str, Any]:
    found = _defaults.get(table)
    if found is None:
        found = {}
        for column in table.c:
            default = column.default
            if default is None:
                continue
            if not default.is_scalar:  # a callable default would need SQLAlchemy's insert
                raise ValueError(
                    f"{table.name}.{column.name} has a default insert_rows cannot give"
                )
            found[column.name] = default.arg  # type: ignore[attr-defined]
        _defaults[table] = found
    return found


_defaults: dict[Table, dict[str, Any]] = {}


# -- one statement on the driver, in SQLAlchemy's transaction (PostgreSQL) -------------------------
# A transition's own statements (the caller's read, the case's load, the version-checked UPDATE,
# the audit entry) are each one row: SQLAlchemy's per-statement work around psycopg's (execution
# context, cursor description, result object, the compiled cache's key) cost more than psycopg's.


def _begun(conn: Connection) -> None:
    """SQLAlchemy's transaction begun before a statement goes to the driver: the driver begins
    its own at the statement, and SQLAlchemy must know there is one to commit or roll back."""
    if not conn.in_transaction():
        conn.begin()


# -- a transaction begun by its first write (PostgreSQL) -------------------------------------------
# psycopg sends BEGIN as a round trip of its own before a transaction's first statement. An event
# request reads its caller and the case (one statement) and then writes the transition: its
# transaction need not begin before that write, and when the transition is all it writes (its
# row, audit entry and counters, one statement), need not begin at all — the server commits a
# statement sent alone as it ends. Two round trips an event instead of four.
_DEFERRED = "jinqiu.deferred_transaction"  # conn.info: _READING, then _WRITTEN_ALONE
_READING = "reading"  # nothing written yet: statements run alone (autocommit)
_WRITTEN_ALONE = "written alone"  # the unit of work's one write ran and was committed


def defer_transaction(conn: Connection) -> None:
    """PostgreSQL: until the connection's first write, its statements run alone (psycopg's
    autocommit): a read needs no BEGIN, and reads the same as in a READ COMMITTED transaction
    that has written nothing (each statement sees what was committed when it began; a lock a
    read took would go at once, so a locking read counts as a write). The first write then
    either begins the transaction (autocommit off: psycopg sends BEGIN before it) or, sent as
    `driver_write(…, alone=True)` — the unit of work's only write —, runs alone itself, and
    any statement after it is refused: it would be outside the unit of work. The transaction's
    end (commit, rollback) or the pool's next checkout turns autocommit off again. SQLite:
    nothing (its statements are in-process)."""
    if conn.dialect.name != "postgresql":
        return
    _begun(conn)  # SQLAlchemy's: its commit or rollback ends the deferral (below)
    conn.connection.driver_connection.autocommit = True  # type: ignore[union-attr]
    conn.info[_DEFERRED] = _READING


def writes_alone(conn: Connection) -> bool:
    """Whether a write now would be its transaction's first on a connection whose transaction
    waits for it (`defer_transaction`): sent `alone`, it is the whole unit of work."""
    return conn.info.get(_DEFERRED) is _READING


def driver_of(conn: Connection, *, writes: bool, alone: bool = False) -> Any:
    """psycopg's connection under `conn`, for a statement sent on it directly (SQLAlchemy's own
    are seen by `_before_statement`). On a connection whose transaction waits for its first
    write (`defer_transaction`): a read runs alone; a write begins the transaction first, or,
    `alone`, runs alone as the whole unit of work. After that, nothing more is sent."""
    state = conn.info.get(_DEFERRED)
    if state is not None:
        if state is _WRITTEN_ALONE:
            raise RuntimeError("a statement after the unit of work's one write, sent alone")
        if alone:
            conn.info[_DEFERRED] = _WRITTEN_ALONE
        elif writes:
            _begin_deferred(conn)
    return conn.connection.driver_connection


def _begin_deferred(conn: Connection) -> None:
    """The transaction begins with the next statement: psycopg sends BEGIN before it."""
    del conn.info[_DEFERRED]
    conn.connection.driver_connection.autocommit = False  # type: ignore[union-attr]


def _before_statement(
    conn: Connection, _cursor: Any, _sql: str, _params: Any, context: Any, _many: bool
) -> None:
    """SQLAlchemy's statements on a deferred connection: each is taken as a write (its text is
    not parsed to tell). `_on_driver`'s, which pass no execution context, were seen already."""
    if context is not None and _DEFERRED in conn.info:
        driver_of(conn, writes=True)


def _end_deferral(conn: Connection, *_args: Any) -> None:
    """At the transaction's end: the connection's next transaction begins as psycopg begins
    one (autocommit off)."""
    if conn.invalidated:  # as in _forget_read_ahead
        return
    if conn.info.pop(_DEFERRED, None) is not None:
        conn.connection.driver_connection.autocommit = False  # type: ignore[union-attr]


event.listen(Engine, "before_cursor_execute", _before_statement)
event.listen(Engine, "commit", _end_deferral)
event.listen(Engine, "rollback", _end_deferral)


def driver_first(
    conn: Connection, statement: AnySelect, params: Mapping[str, Any]
) -> tuple[Any, ...] | None:
    """The first row of a SELECT whose columns need no result processing on PostgreSQL (all but
    SQLite's dates and JSON: psycopg makes them), as the driver's tuple; SQLite: `plain_rows`."""
    if conn.dialect.name != "postgresql":
        rows = plain_rows(conn, statement, params)  # type: ignore[arg-type]
        return tuple(rows[0]) if rows else None
    compiled, _processors = _compiled(conn.dialect, statement)
    row = _on_driver(conn, compiled.string, compiled.construct_params(params), _first, writes=False)
    return None if row is None else tuple(row)


# -- a row read ahead ------------------------------------------------------------------------------
# A caller that reads a row of its own knowing which row is read next in the same transaction
# (the API reads an event's caller knowing the case the engine loads) reads both in one statement:
# on PostgreSQL one round trip and one statement fewer, ~0.1 ms of both sides' CPU an event.
_READ_AHEAD = "jinqiu.read_ahead"


def driver_first_reading_ahead(
    conn: Connection,
    statement: Select[Any],
    params: Mapping[str, Any],
    ahead: Select[Any],
    ahead_params: Mapping[str, Any],
) -> tuple[Any, ...] | None:
    """`driver_first(conn, statement, params)`; on PostgreSQL `ahead`'s first row (or that it has
    none) is read in the same statement and kept for this transaction's next
    `driver_first_read_ahead(conn, ahead, ahead_params)`. Only when `statement` finds a row (an
    unknown caller reads nothing else); commit or rollback drops it. SQLite: `driver_first`
    alone (each statement is in-process there, and its read transaction ends before the write
    begins)."""
    if conn.dialect.name != "postgresql":
        return driver_first(conn, statement, params)
    row = driver_first(conn, _with_ahead(statement, ahead), {**params, **ahead_params})
    if row is None:
        return None
    width = len(statement.selected_columns)
    kept = row[width:-1] if row[-1] else None
    conn.info[_READ_AHEAD] = (conn.get_transaction(), ahead, dict(ahead_params), kept)
    return row[:width]


def driver_first_read_ahead(
    conn: Connection, statement: Select[Any], params: Mapping[str, Any]
) -> tuple[Any, ...] | None:
    """The row `driver_first_reading_ahead` kept for this statement with these parameters in this
    same transaction (once), or else `driver_first`'s. A row kept in another transaction (an
    earlier request's on this pooled connection, whose engine never got to its load) is
    dropped: it is as old as that transaction."""
    kept = conn.info.pop(_READ_AHEAD, None)
    if kept is not None:
        transaction, ahead, ahead_params, row = kept
        if ahead is statement and transaction is conn.get_transaction() and ahead_params == params:
            return row  # type: ignore[no-any-return]
    return driver_first(conn, statement, params)


def _forget_read_ahead(conn: Connection, *_args: Any) -> None:
    """The kept row leaves with its transaction: a case's row holds its family's identity
    numbers, and a pooled connection may sit unused for long."""
    if conn.invalidated:
        # A lost connection: its `info` cannot be reached until the transaction is rolled back
        # (cases.counters._forget_pending says more); the pool clears it when it reconnects.
        return
    conn.info.pop(_READ_AHEAD, None)


# On every engine, as the counters' pending deltas (cases.counters): however the transaction ends.
event.listen(Engine, "commit", _forget_read_ahead)
event.listen(Engine, "rollback", _forget_read_ahead)


@functools.lru_cache(maxsize=16)
def _with_ahead(first: Select[Any], ahead: Select[Any]) -> Select[Any]:
    """`first`'s columns, `ahead`'s, then whether `ahead` found a row: no row when `first` finds
    none. Their parameters keep their names, so the two must not share one."""
    shared = set(first.compile().params) & set(ahead.compile().params)
    if shared:
        raise ValueError(f"parameters named in both statements: {sorted(shared)}")
    mine = first.subquery("first")
    theirs = ahead.add_columns(true().label("found")).subquery("ahead")
    return select(*mine.c, *theirs.c).select_from(mine.outerjoin(theirs, true()))


def driver_write(
    conn: Connection, statement: Any, params: Mapping[str, Any], *, alone: bool = False
) -> int:
    """An INSERT or UPDATE of the parameters' columns on PostgreSQL's driver (compiled once per
    set of keys, the columns' bind processing applied); the rows it wrote. SQLite: SQLAlchemy's
    execute. `alone`: the statement is the whole of its unit of work's writes — on a connection
    whose transaction waits for its first write (`defer_transaction`) it runs alone and the
    server commits it as it ends; on any other it is one more statement of the transaction."""
    if conn.dialect.name != "postgresql":
        return int(conn.execute(statement, params).rowcount)
    keys = tuple(params)
    found = _dml.get((statement, keys))
    if found is None:
        compiled = statement.compile(dialect=conn.dialect, column_keys=list(keys))
        assert isinstance(compiled, SQLCompiler)
        found = _dml[(statement, keys)] = (
            compiled,
            [
                (name, bind.type.dialect_impl(conn.dialect).bind_processor(conn.dialect))
                for name, bind in compiled.binds.items()
            ],
        )
    compiled, processors = found
    bound = compiled.construct_params(params)
    for name, process in processors:
        if process is not None and bound.get(name) is not None:
            bound[name] = process(bound[name])
    return _on_driver(conn, compiled.string, bound, _rowcount, writes=True, alone=alone)


_R = TypeVar("_R")


def _first(cursor: Any) -> Any:
    return cursor.fetchone()


def _rowcount(cursor: Any) -> int:
    return int(cursor.rowcount)


def _on_driver(
    conn: Connection,
    sql: str,
    bound: Mapping[str, Any],
    result: Callable[[Any], _R],
    *,
    writes: bool,
    alone: bool = False,
) -> _R:
    """One statement on psycopg's cursor inside SQLAlchemy's transaction (begun first if none
    is open), with SQLAlchemy's cursor events around it, as for its own statements (the tests'
    gates and statement counters hold there; no execution context is passed), and a failure
    raised as SQLAlchemy raises it. `writes`, `alone`: as `driver_of` and `driver_write`."""
    _begun(conn)
    driver = driver_of(conn, writes=writes, alone=alone)
    try:
        with driver.cursor() as cursor:
            if conn.dispatch.before_cursor_execute:
                conn.dispatch.before_cursor_execute(conn, cursor, sql, bound, None, False)
            cursor.execute(sql, bound)
            answer = result(cursor)
            if conn.dispatch.after_cursor_execute:
                conn.dispatch.after_cursor_execute(conn, cursor, sql, bound, None, False)
            return answer
    except conn.dialect.loaded_dbapi.Error as error:
        raise _failed(conn, sql, bound, error) from error


def _failed(conn: Connection, sql: str, params: Any, error: Any) -> Exception:
    """A driver's error as SQLAlchemy raises a failed statement's (callers catch its classes);
    a lost connection is invalidated first, as SQLAlchemy does, so that closing it does not
    fail again on its ROLLBACK and the pool does not hand it out again."""
    lost = conn.dialect.is_disconnect(error, conn.connection.dbapi_connection, None)
    if lost:
        conn.invalidate(error)
    failed: Exception = DBAPIError.instance(
        sql, params, error, conn.dialect.loaded_dbapi.Error, connection_invalidated=lost
    )
    return failed


# (statement, its parameters' keys) -> compiled, with each bind's processor
_dml: dict[tuple[Any, tuple[str, ...]], tuple[SQLCompiler, list[tuple[str, Any]]]] = {}
