"""create_cases makes what create_case makes, case for case: the same worker, student and case
rows, a first audit entry on an intact chain, the same counters; and refuses as a whole."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, select

from jinqiu.workflow.campaigns.service import load_campaign
from jinqiu.workflow.cases.batch import create_cases
from jinqiu.workflow.cases.counters import counter_differences, counts_for
from jinqiu.workflow.cases.models import Case, Student, Worker
from jinqiu.workflow.cases.schema import CaseCreate
from jinqiu.workflow.cases.service import create_case
from jinqiu.workflow.cases.trail import verify_case_chains
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.errors import DuplicateStudent, PermissionDenied
from tests.factories import actor, new_case, student, weihai, weihai_file, worker

case_t = Case.__table__  # type: ignore[attr-defined]
worker_t = Worker.__table__  # type: ignore[attr-defined]
student_t = Student.__table__  # type: ignore[attr-defined]
UNIT = "WH-HC-001"


def specs(campaign: int, students: list[dict[str, Any]]) -> list[CaseCreate]:
    workers = [
        worker(),
        worker(categories=["migrant_worker"], bank_card_number="6222021234567890123"),
        worker(monthly_income_per_capita="1234.56", archive_status="none", archived_on=None),
    ]
    return [
        CaseCreate.model_validate({"campaign": campaign, "unit": UNIT, "worker": w, "student": s})
        for w, s in zip(workers, students, strict=True)
    ]


def rows_of(engine: Engine, campaign: int) -> list[tuple[Any, ...]]:
    """Each case with its worker and student, ids and the chain's hash left out."""
    with engine.connect() as conn:
        found = conn.execute(
            select(case_t, worker_t, student_t)
            .join(worker_t, worker_t.c.id == case_t.c.worker_id)
            .join(student_t, student_t.c.id == case_t.c.student_id)
            .where(case_t.c.campaign_id == campaign)
            .order_by(case_t.c.id)
        ).all()
    skip = {"id", "worker_id", "student_id", "campaign_id", "audit_head", "id_1", "id_2"}
    return [tuple(v for k, v in r._mapping.items() if k not in skip) for r in found]


def test_the_same_rows_as_one_at_a_time(db: Engine, clock: ManualClock) -> None:
    _tree, first = weihai(db, clock)
    with transaction(db) as conn:
        second = load_campaign(conn, weihai_file(name="威海市2024年金秋助学（第二批）"), clock)
    students = [student(), student(education_level="senior", tier=None), student()]
    with transaction(db) as conn:
        clerk = actor(conn, UNIT, "clerk")
        for spec in specs(first, students):
            create_case(conn, spec, actor=clerk, clock=clock)
        ids = create_cases(conn, specs(second, students), actor=clerk, clock=clock)
    assert len(ids) == 3
    assert rows_of(db, first) == rows_of(db, second)
    with db.connect() as conn:
        assert list(verify_case_chains(conn)) == []
        assert list(counter_differences(conn, None)) == []
        assert counts_for(conn, first, [UNIT]) == counts_for(conn, second, [UNIT])


def test_one_refused_case_refuses_them_all(db: Engine, clock: ManualClock) -> None:
    _tree, campaign = weihai(db, clock)
    students = [student(), student(), student()]
    new_case(db, clock, campaign, UNIT, student_changes={"id_number": students[2]["id_number"]})
    with pytest.raises(DuplicateStudent), transaction(db) as conn:
        create_cases(conn, specs(campaign, students), actor=actor(conn, UNIT, "clerk"), clock=clock)
    with db.connect() as conn:
        assert len(conn.execute(select(case_t.c.id)).all()) == 1


def test_a_role_that_may_not_create_cases(db: Engine, clock: ManualClock) -> None:
    _tree, campaign = weihai(db, clock)
    with pytest.raises(PermissionDenied), transaction(db) as conn:
        create_cases(
            conn, specs(campaign, [student(), student(), student()]),
            actor=actor(conn, UNIT, "reviewer"), clock=clock,
        )  # fmt: skip
