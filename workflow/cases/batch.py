"""Many new cases of one unit and campaign at once (the survey import): each exactly as
`service.create_case` makes it — the same worker, student and case rows, the same first audit
entry, the same counters — in a few statements for all instead of a dozen per case.
tests/workflow/cases/test_batch.py holds the two to the same rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from jinqiu.states import CaseState
from jinqiu.workflow.audit.chain import append_entries, chain_entry
from jinqiu.workflow.banks import bank_of
from jinqiu.workflow.cases.counters import count_state_changes
from jinqiu.workflow.cases.models import still_open
from jinqiu.workflow.cases.schema import CaseCreate, not_after_today
from jinqiu.workflow.cases.service import (
    CREATE_EVENT,
    _duplicate,
    audit_t,
    campaign_t,
    case_t,
    student_t,
    unit_t,
    worker_t,
)
from jinqiu.workflow.clock import Clock
from jinqiu.workflow.driver import insert_rows, new_ids, probed_by_key
from jinqiu.workflow.errors import DuplicateStudent, PermissionDenied, ValidationFailed
from jinqiu.workflow.identity import IdNumber, parse_id_number
from jinqiu.workflow.money import yuan_to_fen
from jinqiu.workflow.roles import Actor, Grant

CHUNK = 500  # student numbers per IN (…) lookup


def _worker_row(spec: CaseCreate, row_id: int, parsed: IdNumber) -> dict[str, Any]:
    w = spec.worker
    row: dict[str, Any] = {"id": row_id, **w.model_dump(exclude={"monthly_income_per_capita"})}
    row.update(
        bank_name=None if w.bank_card_number is None else bank_of(w.bank_card_number),
        gender=parsed.gender.value,
        birth_date=parsed.birth_date,
        monthly_income_per_capita_fen=(
            None
            if w.monthly_income_per_capita is None
            else yuan_to_fen(w.monthly_income_per_capita)
        ),
    )
    return row


def _student_row(spec: CaseCreate, row_id: int, parsed: IdNumber) -> dict[str, Any]:
    s = spec.student
    row: dict[str, Any] = {"id": row_id, **s.model_dump(exclude={"tuition_invoice"})}
    row.update(
        gender=parsed.gender.value,
        birth_date=parsed.birth_date,
        tuition_invoice_fen=None if s.tuition_invoice is None else yuan_to_fen(s.tuition_invoice),
    )
    return row


def create_cases(
    conn: Connection, specs: Sequence[CaseCreate], *, actor: Actor, clock: Clock
) -> list[int]:
    """New cases in `survey`, in the order of `specs` (all of one campaign and unit), in the
    caller's transaction. Refused as a whole when any one would be refused by create_case."""
    if not specs:
        return []
    if not actor.may(Grant.CREATE_CASE):
        raise PermissionDenied("当前角色无权新建申请")
    campaign_id, unit_code = specs[0].campaign, specs[0].unit
    if any(s.campaign != campaign_id or s.unit != unit_code for s in specs):
        raise ValueError("create_cases takes the cases of one campaign and one unit")
    today = clock.now().date()
    for spec in specs:
        not_after_today(
            today,
            worker={"id_number": spec.worker.id_number, "archived_on": spec.worker.archived_on},
            student={"id_number": spec.student.id_number},
        )
    # Parsed once each (and cached by identity.py from the check above).
    workers = [parse_id_number(s.worker.id_number) for s in specs]
    students = [parse_id_number(s.student.id_number) for s in specs]
    unit = conn.execute(
        select(unit_t.c.id, unit_t.c.path).where(unit_t.c.code == unit_code)
    ).first()
    if unit is None or not actor.sees(unit.path):
        raise ValidationFailed(
            f"单位 {unit_code} 不存在",
            [{"field": "unit", "code": "unknown_unit", "message": "单位不存在"}],
        )
    campaign = conn.execute(
        select(campaign_t.c.id, unit_t.c.path)
        .join(unit_t, unit_t.c.id == campaign_t.c.organizer_unit_id)
        .where(campaign_t.c.id == campaign_id)
    ).first()
    if campaign is None or not unit.path.startswith(campaign.path):
        raise ValidationFailed(
            f"活动 {campaign_id} 不存在",
            [{"field": "campaign", "code": "unknown_campaign", "message": "活动不存在"}],
        )
    numbers = [s.student.id_number for s in specs]
    if len(set(numbers)) != len(numbers):
        raise DuplicateStudent(
            "同一学生在本批中出现了两次", {"campaign": campaign_id, "field": "student.id_number"}
        )
    for start in range(0, len(numbers), CHUNK):
        taken = conn.execute(
            probed_by_key(
                conn,
                [case_t.c.student_id_number],
                case_t.c.student_id_number,
                numbers[start : start + CHUNK],
                case_t.c.campaign_id == campaign_id,
                still_open(case_t.c.state),
            )
        ).first()
        if taken is not None:
            raise _duplicate(conn, campaign_id, taken[0], actor, unit_code)

    # Ids first (one statement per table), then each table in one insert: the case rows carry
    # their chain's head, the audit entries their case's id.
    worker_ids = new_ids(conn, worker_t, len(specs))
    student_ids = new_ids(conn, student_t, len(specs))
    case_ids = new_ids(conn, case_t, len(specs))
    insert_rows(
        conn,
        worker_t,
        [_worker_row(s, i, born) for s, i, born in zip(specs, worker_ids, workers, strict=True)],
    )
    insert_rows(
        conn,
        student_t,
        [_student_row(s, i, born) for s, i, born in zip(specs, student_ids, students, strict=True)],
    )
    now = clock.now()
    no_data: dict[str, Any] = {}  # one object for every entry: encoded once for the insert
    survey = CaseState.SURVEY.value  # an enum's .value is a descriptor call: read once
    links = [
        chain_entry(
            subject_column="case_id",
            subject_id=case_id,
            head_seq=0,
            head_hash=None,
            actor=actor.username,
            actor_unit=actor.unit_code,
            event=CREATE_EVENT,
            from_state=None,
            to_state=survey,
            opinion=None,
            data=no_data,
            at=now,
        )
        for case_id in case_ids
    ]
    case_rows = [
        {
            "id": case_id,
            "campaign_id": campaign_id,
            "unit_id": unit.id,
            "worker_id": worker_id,
            "student_id": student_id,
            "student_id_number": number,
            "state": survey,
            "version": 1,
            "approval_step": 0,
            "objection_open": False,
            "payment_failures": 0,
            "audit_seq": link.seq,
            "audit_head": link.hash,
            "created_by": actor.username,
            "created_at": now,
            "updated_at": now,
        }
        for case_id, worker_id, student_id, number, link in zip(
            case_ids, worker_ids, student_ids, numbers, links, strict=True
        )
    ]
    try:
        insert_rows(conn, case_t, case_rows)
    except IntegrityError as exc:  # a race lost on the one-application index
        if "uq_active_case_per_student" in str(exc.orig) or "student_id_number" in str(exc.orig):
            # The caller's transaction (or its savepoint) takes the whole call back.
            raise DuplicateStudent(
                "该学生在本次活动中已有在办的申请，不能重复申请",
                {"campaign": campaign_id, "field": "student.id_number"},
            ) from exc
        raise
    append_entries(conn, audit_t, links)
    count_state_changes(conn, [(campaign_id, unit.path, None, survey)] * len(case_ids))
    return [int(i) for i in case_ids]
