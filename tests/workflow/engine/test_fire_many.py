"""The engine's set-based bulk path against its single path, on both databases: the same rows,
the same audit bytes, the same refusals, and money shared out exactly."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, select

from jinqiu.states import CaseEvent, CaseState
from jinqiu.workflow.audit.models import AuditEntry
from jinqiu.workflow.campaigns.models import FundSource
from jinqiu.workflow.cases.counters import counter_differences
from jinqiu.workflow.cases.engine import CASES, apply_event
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.engine.bulk import Item, fire_many
from tests.factories import actor_of, case_in, weihai

audit_t = AuditEntry.__table__  # type: ignore[attr-defined]
case_t = Case.__table__  # type: ignore[attr-defined]
fund_t = FundSource.__table__  # type: ignore[attr-defined]
GRASSROOTS, DISTRICT, CITY = "WH-HC-001", "WH-HC", "WH"


def snapshot(engine: Engine, ids: list[int]) -> tuple[list[Any], list[Any]]:
    with engine.connect() as conn:
        cases = conn.execute(
            select(
                case_t.c.state, case_t.c.version, case_t.c.approval_step, case_t.c.audit_seq,
                case_t.c.audit_head, case_t.c.approved_amount_fen, case_t.c.fund_source_id,
            ).where(case_t.c.id.in_(ids)).order_by(case_t.c.id)
        ).all()  # fmt: skip
        entries = conn.execute(
            select(*[c for c in audit_t.c if c.name != "id"])
            .where(audit_t.c.case_id.in_(ids))
            .order_by(audit_t.c.case_id, audit_t.c.seq)
        ).all()
    return cases, entries


def without_chain(rows: list[Any]) -> list[tuple[Any, ...]]:
    skip = {"case_id", "prev_hash", "hash"}
    return [tuple(v for k, v in r._mapping.items() if k not in skip) for r in rows]


def versions(engine: Engine, ids: list[int]) -> list[int]:
    with engine.connect() as conn:
        rows = conn.execute(select(case_t.c.id, case_t.c.version).where(case_t.c.id.in_(ids)))
        found = dict(rows.all())
    return [found[i] for i in ids]


@pytest.mark.parametrize("level,approver", [(0, GRASSROOTS), (2, CITY)])
def test_bulk_and_single_write_the_same_bytes(
    db: Engine, clock: ManualClock, level: int, approver: str
) -> None:
    _tree, campaign = weihai(db, clock)
    who = actor_of(db, approver, "approver")
    bulk_ids = [case_in(db, clock, campaign, GRASSROOTS, CaseState.APPROVAL, approved=level)
                for _ in range(6)]  # fmt: skip
    single_ids = [case_in(db, clock, campaign, GRASSROOTS, CaseState.APPROVAL, approved=level)
                  for _ in range(6)]  # fmt: skip
    with transaction(db) as conn:
        results = fire_many(
            conn, CASES, items=[Item(i, v) for i, v in zip(bulk_ids, versions(db, bulk_ids), strict=True)],
            event=CaseEvent.APPROVE, actor=who, clock=clock, opinion="同意",
        )  # fmt: skip
    assert all(r.ok for r in results), [r.error for r in results]
    with transaction(db) as conn:
        for i, v in zip(single_ids, versions(db, single_ids), strict=True):
            apply_event(conn, case_id=i, event=CaseEvent.APPROVE, expected_version=v,
                        actor=who, clock=clock, opinion="同意")  # fmt: skip
    bulk_cases, bulk_entries = snapshot(db, bulk_ids)
    single_cases, single_entries = snapshot(db, single_ids)
    assert [c.state for c in bulk_cases] == [c.state for c in single_cases]
    assert [c.version for c in bulk_cases] == [c.version for c in single_cases]
    assert [c.approved_amount_fen for c in bulk_cases] == [
        c.approved_amount_fen for c in single_cases
    ]
    # The entries differ only where they are chained on their case's id.
    assert without_chain(bulk_entries) == without_chain(single_entries)
    with db.connect() as conn:
        assert list(counter_differences(conn, campaign)) == []
