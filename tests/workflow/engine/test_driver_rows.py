"""The engine's DB-API hot paths write what SQLAlchemy would write: a value stored by the
cursor path compares with a parameter bound by SQLAlchemy as the same instant."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, bindparam, select

from jinqiu.states import CaseEvent, CaseState
from jinqiu.workflow.audit.models import AuditEntry
from jinqiu.workflow.cases.engine import CASES, apply_event
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.driver import plain_rows
from jinqiu.workflow.engine.bulk import Item, fire_many
from tests.factories import actor_of, case_in, weihai

audit_t = AuditEntry.__table__  # type: ignore[attr-defined]
case_t = Case.__table__  # type: ignore[attr-defined]
ON_THE_SECOND = dt.datetime(2024, 8, 12, 9, 0, tzinfo=dt.UTC)  # no microseconds to print


def test_instants_written_on_the_cursor_compare_as_sqlalchemy_binds_them(db: Engine) -> None:
    clock = ManualClock(dt.datetime(2024, 8, 9, 10, 0, 0, 500, tzinfo=dt.UTC))
    _tree, campaign = weihai(db, clock)
    who = actor_of(db, "WH-HC-001", "approver")
    one, many = (case_in(db, clock, campaign, "WH-HC-001", CaseState.APPROVAL) for _ in range(2))
    clock.set(ON_THE_SECOND)
    with transaction(db) as conn:
        version = conn.execute(select(case_t.c.version).where(case_t.c.id == one)).scalar_one()
        apply_event(conn, case_id=one, event=CaseEvent.APPROVE, expected_version=version,
                    actor=who, clock=clock, opinion="同意")  # fmt: skip
        version = conn.execute(select(case_t.c.version).where(case_t.c.id == many)).scalar_one()
        [done] = fire_many(conn, CASES, items=[Item(many, version)], event=CaseEvent.APPROVE,
                           actor=who, clock=clock, opinion="同意")  # fmt: skip
        assert done.ok, done.error
    with db.connect() as conn:
        moved = conn.execute(
            select(case_t.c.id).where(case_t.c.updated_at >= ON_THE_SECOND).order_by(case_t.c.id)
        ).scalars()
        assert list(moved) == [one, many]
        entries = conn.execute(
            select(audit_t.c.case_id).where(audit_t.c.at >= ON_THE_SECOND)
        ).scalars()
        assert sorted(entries) == [one, many]


def test_rows_read_on_the_cursor_are_the_rows_sqlalchemy_reads(db: Engine) -> None:
    """`plain_rows` processes column by column (dates, JSON, booleans): the same values, in the
    same order, as SQLAlchemy's own result rows — and no rows when nothing matches."""
    clock = ManualClock(ON_THE_SECOND)
    _tree, campaign = weihai(db, clock)
    ids = [case_in(db, clock, campaign, "WH-HC-001", CaseState.APPROVAL) for _ in range(3)]
    statement = select(case_t).where(case_t.c.id.in_(bindparam("ids", expanding=True)))
    with db.connect() as conn:
        expected = [tuple(r) for r in conn.execute(statement, {"ids": ids}).all()]
        assert [tuple(r) for r in plain_rows(conn, statement, {"ids": ids})] == expected
        assert list(plain_rows(conn, statement, {"ids": [-1]})) == []
