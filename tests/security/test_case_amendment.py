"""Issue 9, "Domain rules in the API layer": which survey fields a correction (补正) may change,
and their limits, are the domain's (workflow/cases/schema.py), so `amend_case` refuses anything
else whoever calls it — the API, the CLI, a script. Before, it wrote whatever column it was
given: a new student identity number left `aid_case.student_id_number` (what the
one-application-per-student index reads) naming the old student."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Engine, select

from jinqiu.workflow.cases.models import Case, Student, Worker
from jinqiu.workflow.cases.service import amend_case
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.errors import ValidationFailed
from jinqiu.workflow.identity import make_id_number
from tests.factories import actor_of, case_row, new_case, weihai

case_t = Case.__table__  # type: ignore[attr-defined]
student_t = Student.__table__  # type: ignore[attr-defined]
worker_t = Worker.__table__  # type: ignore[attr-defined]
OTHER_STUDENT = make_id_number("371002", dt.date(2005, 9, 9), 77)


def amend(engine: Engine, clock: ManualClock, case_id: int, **changes: dict[str, Any]) -> int:
    with transaction(engine) as conn:
        return amend_case(
            conn,
            case_id,
            worker_changes=changes.get("worker", {}),
            student_changes=changes.get("student", {}),
            expected_version=None,
            actor=actor_of(engine, "WH-HC-001", "clerk"),
            clock=clock,
        )


def rows(engine: Engine, case_id: int) -> tuple[Any, Any, Any]:
    with engine.connect() as conn:
        case = conn.execute(select(case_t).where(case_t.c.id == case_id)).one()
        student = conn.execute(select(student_t).where(student_t.c.id == case.student_id)).one()
        worker = conn.execute(select(worker_t).where(worker_t.c.id == case.worker_id)).one()
    return case, student, worker


def refused_field(
    engine: Engine, clock: ManualClock, case_id: int, **changes: dict[str, Any]
) -> str:
    before = rows(engine, case_id)
    with pytest.raises(ValidationFailed) as refused:
        amend(engine, clock, case_id, **changes)
    assert rows(engine, case_id) == before, "a refused correction wrote something"
    details = refused.value.details
    assert isinstance(details, list) and details, refused.value.body()
    return str(details[0]["field"])


@pytest.fixture
def case(db: Engine, clock: ManualClock) -> int:
    _tree, campaign = weihai(db, clock)
    return new_case(db, clock, campaign, "WH-HC-001")


def test_the_student_identity_number_cannot_be_amended_out_of_step(
    db: Engine, clock: ManualClock, case: int
) -> None:
    assert (
        refused_field(db, clock, case, student={"id_number": OTHER_STUDENT}) == "student.id_number"
    )
    found, student, _worker = rows(db, case)
    assert found.student_id_number == student.id_number


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (
            {"worker": {"id_number": make_id_number("371002", dt.date(1980, 1, 1), 5)}},
            "worker.id_number",
        ),
        ({"worker": {"gender": "F"}}, "worker.gender"),  # follows from the identity number
        ({"student": {"birth_date": dt.date(2010, 1, 1)}}, "student.birth_date"),
        ({"worker": {"id": 999}}, "worker.id"),
        ({"student": {"education_level": "primary"}}, "student.education_level"),
        ({"worker": {"monthly_income_per_capita_fen": 1}}, "worker.monthly_income_per_capita_fen"),
    ],
)
def test_only_the_fields_of_the_correction_form_are_written(
    db: Engine, clock: ManualClock, case: int, changes: dict[str, Any], field: str
) -> None:
    assert refused_field(db, clock, case, **changes) == field


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"worker": {"name": "王" * 51}}, "worker.name"),
        ({"worker": {"name": None}}, "worker.name"),  # required on the survey form
        ({"worker": {"household_size": 0}}, "worker.household_size"),
        ({"worker": {"bank_card_number": "12"}}, "worker.bank_card_number"),
        ({"worker": {"archive_status": "rich"}}, "worker.archive_status"),
        ({"student": {"exam_score": 1001}}, "student.exam_score"),
        ({"student": {"school": "校" * 201}}, "student.school"),
    ],
)
def test_the_limits_of_a_correction_are_the_domains(
    db: Engine, clock: ManualClock, case: int, changes: dict[str, Any], field: str
) -> None:
    assert refused_field(db, clock, case, **changes) == field


def test_a_correction_within_the_form_is_written_and_audited(
    db: Engine, clock: ManualClock, case: int
) -> None:
    version = amend(
        db,
        clock,
        case,
        worker={"bank_card_number": "６２２２０２１２３４５６７８９０"},
        student={"school": "青岛大学", "exam_score": None},
    )
    found, student, worker = rows(db, case)
    assert (version, found.version) == (2, 2)
    assert worker.bank_card_number == "6222021234567890"
    assert (student.school, student.exam_score) == ("青岛大学", None)
    assert case_row(db, case).audit_seq == 2


def test_a_correction_that_changes_nothing_writes_nothing(
    db: Engine, clock: ManualClock, case: int
) -> None:
    """Sending the form back as it is (a page saved twice, a client retrying) is no correction:
    no new version, no audit entry saying nothing changed."""
    _found, student, _worker = rows(db, case)
    before = rows(db, case)
    version = amend(db, clock, case, student={"school": student.school})
    assert version == before[0].version
    assert rows(db, case) == before
    assert case_row(db, case).audit_seq == before[0].audit_seq
