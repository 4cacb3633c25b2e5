"""Migration 0027 (both databases): `inbox_read` is what the model declares, and an item read
under the unit-wide rule stays read for the user who read it — and only for them."""

from __future__ import annotations

import datetime as dt

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, select

from jinqiu.notifications.models import InboxMessage, InboxRead
from jinqiu.workflow.db import transaction
from jinqiu.workflow.metadata import metadata
from jinqiu.workflow.migrate import alembic_config, upgrade
from tests.workflow.employment.test_migration import names_in

inbox_t = InboxMessage.__table__  # type: ignore[attr-defined]
read_t = InboxRead.__table__  # type: ignore[attr-defined]
# The revision 0027 follows, read from the chain (merges re-chain it).
BEFORE = str(ScriptDirectory.from_config(alembic_config()).get_revision("0027").down_revision)


def test_the_migrated_table_is_the_model(db: Engine) -> None:
    with db.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, metadata)
    assert [d for d in diffs if "inbox_read" in names_in(d)] == []


def test_a_read_under_the_unit_wide_rule_becomes_its_reader_s_receipt(fresh: Engine) -> None:
    upgrade(fresh, BEFORE)
    read_at = dt.datetime(2024, 7, 22, 1, 30, tzinfo=dt.UTC)
    with transaction(fresh) as conn:
        conn.execute(
            inbox_t.insert(),
            [
                {
                    "idempotency_key": key,
                    "unit_code": "WH-HC-001",
                    "title": key,
                    "body": key,
                    "created_at": read_at - dt.timedelta(days=1),
                    "read_at": at,
                    "read_by": by,
                }
                for key, at, by in (("read", read_at, "clerk.wh-hc-001"), ("unread", None, None))
            ],
        )
    upgrade(fresh)
    with fresh.connect() as conn:
        rows = conn.execute(
            select(inbox_t.c.idempotency_key, read_t.c.username, read_t.c.read_at).join(
                read_t, read_t.c.inbox_message_id == inbox_t.c.id
            )
        ).all()
    assert [tuple(r) for r in rows] == [("read", "clerk.wh-hc-001", read_at)]
