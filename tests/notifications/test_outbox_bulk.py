"""Enqueueing many messages at once (PostgreSQL: COPY into a staging table, then one INSERT …
SELECT … ON CONFLICT DO NOTHING) writes the rows a message-by-message enqueue writes — the same
text, JSON and instants, ids in the order given — and skips a key already there, in the
caller's transaction: rolled back with it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Engine, Text, cast, select

from jinqiu.notifications.models import InboxMessage, OutboxMessage
from jinqiu.notifications.outbox import BULK_FROM, InboxItem, Outgoing, enqueue, post_to_inbox
from jinqiu.workflow.db import transaction

outbox_t = OutboxMessage.__table__  # type: ignore[attr-defined]
inbox_t = InboxMessage.__table__  # type: ignore[attr-defined]
NOW = dt.datetime(2024, 7, 31, 8, 0, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=8)))
N = BULK_FROM * 2 + 7


def outgoing(prefix: str, i: int) -> Outgoing:
    return Outgoing(
        f"{prefix}:{i}",
        "webhook" if i % 3 else "email",
        f"u{i}@example.org",
        f"【今日截止】主题 {i} <&>",
        f"正文\n\t{i} \\ \\N 'x' \"y\"\r\n",
        None if i % 2 else f"<p>{i} &amp; 中文</p>",
        {"msgtype": "markdown", "data": {"pending": {"survey": i}, "unit": f"U{i}", "x": None},
         "text": "中文 \u2028 \\ \""},
        unit_code=None if i % 5 == 0 else f"U{i}",
    )  # fmt: skip


def items(prefix: str, i: int) -> InboxItem:
    link = None if i % 4 == 0 else f"https://x.example.org/queue?unit=U{i}&a=1"
    return InboxItem(f"{prefix}:{i}", f"U{i}", f"标题 {i}", f"正文 {i}\n\\N", link)


def rows(db: Engine, table: Any, prefix: str) -> list[tuple[Any, ...]]:
    """The rows of `prefix`, in id order, without id and key (JSON as its stored text)."""
    columns = [
        cast(c, Text()) if c.name == "payload" else c
        for c in table.c
        if c.name not in ("id", "idempotency_key")
    ]
    with db.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(table.c.idempotency_key, *columns)
                .where(table.c.idempotency_key.like(f"{prefix}:%"))
                .order_by(table.c.id)
            )
        ]


def test_many_at_once_write_the_rows_one_at_a_time_writes(db: Engine) -> None:
    with transaction(db) as conn:
        for i in range(N):  # one by one: the single-statement path
            enqueue(conn, [outgoing("one", i)], NOW)
            post_to_inbox(conn, [items("one", i)], NOW)
    with transaction(db) as conn:  # all at once: the bulk path
        enqueue(conn, [outgoing("all", i) for i in range(N)], NOW)
        post_to_inbox(conn, [items("all", i) for i in range(N)], NOW)
    for table in (outbox_t, inbox_t):
        one, many = rows(db, table, "one"), rows(db, table, "all")
        assert [r[0] for r in many] == [f"all:{i}" for i in range(N)]  # ids in the order given
        assert [r[1:] for r in many] == [r[1:] for r in one]


def test_a_key_already_there_is_kept_and_the_others_are_written(db: Engine) -> None:
    with transaction(db) as conn:
        enqueue(conn, [outgoing("k", i) for i in range(0, N, 2)], NOW)
        post_to_inbox(conn, [items("k", i) for i in range(0, N, 2)], NOW)
    before = {r[0]: r for r in rows(db, outbox_t, "k")}
    later = NOW + dt.timedelta(days=1)
    with transaction(db) as conn:
        enqueue(conn, [outgoing("f", i) for i in range(N)], later)  # new keys, written first
        # Again, every key, a day later: only the new ones land, and what this transaction
        # wrote before stays.
        post_to_inbox(conn, [items("k", i) for i in range(N)], later)
        enqueue(conn, [outgoing("k", i) for i in range(N)], later)
        enqueue(conn, [outgoing("k", i) for i in range(N)], later)  # twice in one transaction
    after = {r[0]: r for r in rows(db, outbox_t, "k")}
    assert sorted(after) == sorted(f"k:{i}" for i in range(N))
    assert all(after[k] == row for k, row in before.items())  # untouched
    added = [r[0] for r in rows(db, outbox_t, "k") if r[0] not in before]
    assert added == [f"k:{i}" for i in range(1, N, 2)]  # ids in the order given
    assert len(rows(db, inbox_t, "k")) == N
    assert len(rows(db, outbox_t, "f")) == N


def test_rolled_back_with_the_callers_transaction(db: Engine) -> None:
    with pytest.raises(RuntimeError), transaction(db) as conn:
        enqueue(conn, [outgoing("r", i) for i in range(N)], NOW)
        post_to_inbox(conn, [items("r", i) for i in range(N)], NOW)
        raise RuntimeError("the caller fails after enqueueing")
    assert rows(db, outbox_t, "r") == [] and rows(db, inbox_t, "r") == []
    with transaction(db) as conn:  # the same connection's staging is usable again
        enqueue(conn, [outgoing("r", i) for i in range(N)], NOW)
    assert len(rows(db, outbox_t, "r")) == N
