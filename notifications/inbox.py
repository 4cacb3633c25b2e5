"""Reading the in-app inbox per user: an item is addressed to a unit, and each of its users reads
it for themselves (an `inbox_read` receipt). The unit's first read (`inbox_message.read_at` /
`read_by`) is set in the same transaction as the receipt that makes it, while it is still empty.

Every writer here runs inside the caller's transaction; receipts are inserted with ON CONFLICT
DO NOTHING, so two tabs or two requests marking the same item read give one receipt and no
error, and the first committed reader of the unit is the one `read_by` keeps."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    exists,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from jinqiu.notifications.models import InboxMessage, InboxRead

inbox_t = InboxMessage.__table__  # type: ignore[attr-defined]
read_t = InboxRead.__table__  # type: ignore[attr-defined]
RECEIPT_KEY = ["username", "inbox_message_id"]


def read_by(username: str) -> ColumnElement[bool]:
    """The item has this user's receipt (a primary-key lookup per item)."""
    return exists().where(read_t.c.inbox_message_id == inbox_t.c.id, read_t.c.username == username)


def items_with_my_read(unit_code: str | None, username: str) -> Select[Any]:
    """The unit's items, each with the user's own read time as `read_by_me_at` (null: unread by
    them), through an outer join on the receipt's primary key."""
    return (
        select(inbox_t, read_t.c.read_at.label("read_by_me_at"))
        .select_from(
            inbox_t.outerjoin(
                read_t,
                and_(read_t.c.inbox_message_id == inbox_t.c.id, read_t.c.username == username),
            )
        )
        .where(inbox_t.c.unit_code == unit_code)
    )


def unread_count(conn: Connection, unit_code: str | None, username: str) -> int:
    """The unit's items this user has not read: one query, the unit's index and the receipts'
    primary key (it runs for every page's nav)."""
    return int(
        conn.execute(
            select(func.count())
            .select_from(inbox_t)
            .where(inbox_t.c.unit_code == unit_code, ~read_by(username))
        ).scalar_one()
    )


def _insert_receipts(conn: Connection) -> Any:
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    return dialect_insert(read_t)


def mark_read(conn: Connection, item_id: int, username: str, now: dt.datetime) -> bool:
    """The user's receipt for one item (the caller has checked the item is of their unit); the
    unit's first read if the item had none. True when this call wrote the receipt."""
    written = conn.execute(
        _insert_receipts(conn)
        .values(inbox_message_id=item_id, username=username, read_at=now)
        .on_conflict_do_nothing(index_elements=RECEIPT_KEY)
        .returning(read_t.c.inbox_message_id)
    ).first()
    conn.execute(
        update(inbox_t)
        .where(inbox_t.c.id == item_id, inbox_t.c.read_at.is_(None))
        .values(read_at=now, read_by=username)
    )
    return written is not None


def mark_all_read(conn: Connection, unit_code: str | None, username: str, now: dt.datetime) -> int:
    """Receipts for every item of the unit the user has not read, in one statement; the unit's
    first read for those no one had read. The number of receipts written."""
    # In id order: two calls at once (two tabs) take the receipts' keys in the same order.
    unread = (
        select(literal(username), inbox_t.c.id, literal(now, read_t.c.read_at.type))
        .where(inbox_t.c.unit_code == unit_code, ~read_by(username))
        .order_by(inbox_t.c.id)
    )
    written = conn.execute(
        _insert_receipts(conn)
        .from_select(["username", "inbox_message_id", "read_at"], unread)
        .on_conflict_do_nothing(index_elements=RECEIPT_KEY)
        # Counted from RETURNING: psycopg gives no rowcount for INSERT … SELECT.
        .returning(read_t.c.inbox_message_id)
    ).all()
    conn.execute(
        update(inbox_t)
        .where(inbox_t.c.unit_code == unit_code, inbox_t.c.read_at.is_(None))
        .values(read_at=now, read_by=username)
    )
    return len(written)
