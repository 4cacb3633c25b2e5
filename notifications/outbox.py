"""Enqueueing messages (inside the caller's transaction) and claiming due ones for delivery."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from sqlalchemy import Connection, and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from jinqiu.notifications.models import InboxMessage, OutboxMessage, OutboxStatus

outbox_t = OutboxMessage.__table__  # type: ignore[attr-defined]
inbox_t = InboxMessage.__table__  # type: ignore[attr-defined]

MAX_ATTEMPTS = 6
BACKOFF_BASE = dt.timedelta(seconds=30)  # 30 s, 1 min, 2 min, 4 min, 8 min, then failed


@dataclass(frozen=True)
class Outgoing:
    idempotency_key: str
    channel: str
    recipient: str
    subject: str
    body_text: str
    body_html: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    unit_code: str | None = None  # the unit whose contact receives it (scopes the admin view)


@dataclass(frozen=True)
class InboxItem:
    idempotency_key: str
    unit_code: str
    title: str
    body: str
    link: str | None = None


def message_id(idempotency_key: str, domain: str = "jinqiu.local") -> str:
    """The e-mail Message-ID of a message: the same key always gives the same id."""
    return f"<{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}@{domain}>"


# From this many rows on, PostgreSQL takes them by COPY (a sweep's chunk of reminders); fewer
# (a transition's notices) by one INSERT: a single round trip, where COPY takes three.
BULK_FROM = 64


def _insert_ignoring_duplicates(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    if conn.dialect.name == "postgresql" and len(rows) >= BULK_FROM:
        _copy_ignoring_duplicates(conn, table, rows)
        return
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(
        dialect_insert(table).on_conflict_do_nothing(index_elements=["idempotency_key"]), rows
    )


def _copy_ignoring_duplicates(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL, inside the caller's transaction (on the driver's connection SQLAlchemy holds
    it on): the rows COPYed straight into the table, in the order given, under a savepoint; if
    a key is already there (a message enqueued before — never the sweep's case, whose keys come
    from ledger rows it has just claimed), the savepoint is rolled back and the rows go through a
    staging table and `INSERT … SELECT … ON CONFLICT DO NOTHING` instead. psycopg's executemany
    sends one INSERT per row (~50 µs each, both sides); COPY streams them, and the staging step
    costs the server more than the COPY itself, so it is paid only when needed.

    Each value goes through its column's own bind processing (aware instants to naive UTC, JSON
    through the dialect's serializer): the rows are the INSERT's byte for byte."""
    columns = list(rows[0])
    dialect = conn.dialect
    values = list(
        zip(
            *(
                _processed(
                    [row[c] for row in rows],
                    table.c[c].type.dialect_impl(dialect).bind_processor(dialect),
                )
                for c in columns
            ),
            strict=True,
        )
    )
    # Binary COPY takes each value as its column's type: the model's, VARCHAR(200) → varchar.
    types = [table.c[c].type.compile(dialect=dialect).split("(")[0].lower() for c in columns]
    savepoint = conn.begin_nested()
    try:
        _copy(conn, table.name, columns, types, values)
    except psycopg.errors.UniqueViolation:
        savepoint.rollback()
        _copy_through_staging(conn, table.name, columns, types, values)
    else:
        savepoint.commit()


def _processed(values: list[Any], process: Callable[[Any], Any] | None) -> list[Any]:
    """One column's values through its bind processing, column by column rather than row by
    row; a value that is the row before's very object (the `now` of every row of a batch) is
    processed once."""
    if process is None:
        return values
    out: list[Any] = []
    last: Any = None
    done: Any = None
    for value in values:
        if value is not last:
            last, done = value, None if value is None else process(value)
        out.append(done)
    return out


def _copy(
    conn: Connection,
    into: str,
    columns: list[str],
    types: list[str],
    values: Iterable[Sequence[Any]],
) -> None:
    """Binary COPY: text goes as its UTF-8 bytes, where the text format escapes it byte by
    byte (a sweep's 20 MB of messages); `types` are the columns' own."""
    # Always after a statement through SQLAlchemy (SAVEPOINT, CREATE TEMPORARY TABLE): a
    # transaction waiting for its first write (workflow.driver.defer_transaction) began there.
    driver = conn.connection.driver_connection
    assert driver is not None
    with (
        driver.cursor() as cursor,
        cursor.copy(f"COPY {into} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.set_types(types)
        for row in values:
            copy.write_row(row)


def _copy_through_staging(
    conn: Connection,
    table: str,
    columns: list[str],
    types: list[str],
    values: list[tuple[Any, ...]],
) -> None:
    """The rows into a temporary table of this session (named after the columns, so a session
    outliving a migration gets a new one), then moved in their order, a key already there
    skipped; the move empties it, and a rolled-back transaction takes its rows with it."""
    names = ", ".join(columns)
    stage = f"jinqiu_stage_{table}_{hashlib.sha256(names.encode()).hexdigest()[:8]}"
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} AS "
        f"SELECT 0 AS n, {names} FROM {table} WITH NO DATA"
    )
    _copy(
        conn,
        stage,
        ["n", *columns],
        ["integer", *types],
        ((n, *row) for n, row in enumerate(values)),
    )
    conn.exec_driver_sql(
        f"WITH staged AS (DELETE FROM {stage} RETURNING *) "
        f"INSERT INTO {table} ({names}) SELECT {names} FROM staged ORDER BY n "
        "ON CONFLICT (idempotency_key) DO NOTHING"
    )


def enqueue(conn: Connection, messages: Sequence[Outgoing], now: dt.datetime) -> None:
    _insert_ignoring_duplicates(
        conn,
        outbox_t,
        [
            {
                "idempotency_key": m.idempotency_key,
                "channel": m.channel,
                "recipient": m.recipient,
                "subject": m.subject,
                "body_text": m.body_text,
                "body_html": m.body_html,
                "payload": m.payload,
                "unit_code": m.unit_code,
                "status": OutboxStatus.PENDING.value,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for m in messages
        ],
    )


def post_to_inbox(conn: Connection, items: Sequence[InboxItem], now: dt.datetime) -> None:
    _insert_ignoring_duplicates(
        conn,
        inbox_t,
        [
            {
                "idempotency_key": i.idempotency_key,
                "unit_code": i.unit_code,
                "title": i.title,
                "body": i.body,
                "link": i.link,
                "created_at": now,
            }
            for i in items
        ],
    )


def claim_due(
    conn: Connection, *, worker: str, now: dt.datetime, lease: dt.timedelta, limit: int
) -> list[Any]:
    """Leases up to `limit` due messages to `worker`. A lease that ran out (its holder died)
    may be claimed again. On PostgreSQL, SKIP LOCKED lets several workers claim side by side."""
    due = (
        select(outbox_t.c.id)
        .where(
            outbox_t.c.status == OutboxStatus.PENDING.value,
            outbox_t.c.next_attempt_at <= now,
            or_(outbox_t.c.claimed_until.is_(None), outbox_t.c.claimed_until < now),
        )
        .order_by(outbox_t.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = [r.id for r in conn.execute(due)]
    if not ids:
        return []
    conn.execute(
        update(outbox_t)
        .where(outbox_t.c.id.in_(ids))
        .values(claimed_by=worker, claimed_until=now + lease)
    )
    return list(
        conn.execute(select(outbox_t).where(outbox_t.c.id.in_(ids)).order_by(outbox_t.c.id))
    )


def mark_sent(conn: Connection, ids: Sequence[int], *, worker: str, now: dt.datetime) -> None:
    """The messages `ids`, sent by `worker`, marked sent in one statement (those whose lease
    another worker has taken since are left to it)."""
    if not ids:
        return
    conn.execute(
        update(outbox_t)
        .where(and_(outbox_t.c.id.in_(ids), outbox_t.c.claimed_by == worker))
        .values(
            status=OutboxStatus.SENT.value,
            sent_at=now,
            claimed_until=None,
            attempts=outbox_t.c.attempts + 1,
            last_error=None,
        )
    )


def release(conn: Connection, ids: Sequence[int], *, worker: str) -> None:
    """Gives back leased messages `worker` did not try: any worker may claim them at once."""
    if not ids:
        return
    conn.execute(
        update(outbox_t)
        .where(and_(outbox_t.c.id.in_(ids), outbox_t.c.claimed_by == worker))
        .values(claimed_until=None)
    )


def mark_failed(
    conn: Connection,
    message: Any,
    *,
    worker: str,
    now: dt.datetime,
    error: str,
    permanent: bool = False,
) -> bool:
    """Schedules a retry with exponential backoff; True when this was the last attempt (or the
    failure is `permanent`: retrying cannot help)."""
    attempts = int(message.attempts) + 1
    final = permanent or attempts >= MAX_ATTEMPTS
    conn.execute(
        update(outbox_t)
        .where(and_(outbox_t.c.id == message.id, outbox_t.c.claimed_by == worker))
        .values(
            attempts=attempts,
            status=(OutboxStatus.FAILED if final else OutboxStatus.PENDING).value,
            next_attempt_at=now + BACKOFF_BASE * (2 ** (attempts - 1)),
            claimed_until=None,
            last_error=error[:2000],
        )
    )
    return final
