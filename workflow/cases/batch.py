"""Many new cases of one unit and campaign at once (the survey import): each exactly as
`service.create_case` makes it — the same worker, student and case rows, the same first audit
entry, the same counters — in a few statements for all instead of a dozen per case.
tests/workflow/cases/test_batch.py holds the two to the same rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from jinqiu.states import ENDED_WITHOUT_AID, CaseState
from jinqiu.workflow.audit.chain import append_entries, chain_entry
from jinqiu.workflow.banks import bank_of
from jinqiu.workflow.cases.counters import count_state_changes
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
from jinqiu.workflow.errors import DuplicateStudent, PermissionDenied, ValidationFailed
from jinqiu.workflow.identity import parse_id_number
from jinqiu.workflow.money import yuan_to_fen
from jinqiu.workflow.roles import Actor, Grant

CHUNK = 500  # student numbers per IN (…) lookup


def _worker_row(spec: CaseCreate) -> dict[str, Any]:
    w = spec.worker
    parsed = parse_id_number(w.id_number)
    row: dict[str, Any] = w.model_dump(exclude={"monthly_income_per_capita"})
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


def _student_row(spec: CaseCreate) -> dict[str, Any]:
    s = spec.student
    parsed = parse_id_number(s.id_number)
    row: dict[str, Any] = s.model_dump(exclude={"tuition_invoice"})
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
            select(case_t.c.student_id_number).where(
                case_t.c.campaign_id == campaign_id,
                case_t.c.student_id_number.in_(numbers[start : start + CHUNK]),
                case_t.c.state.not_in([s.value for s in ENDED_WITHOUT_AID]),
            )
        ).first()
        if taken is not None:
            raise _duplicate(conn, campaign_id, taken[0], actor, unit_code)

    worker_ids = conn.execute(
        insert(worker_t).returning(worker_t.c.id, sort_by_parameter_order=True),
        [_worker_row(s) for s in specs],
    ).scalars()
    student_ids = conn.execute(
        insert(student_t).returning(student_t.c.id, sort_by_parameter_order=True),
        [_student_row(s) for s in specs],
    ).scalars()
    now = clock.now()
    case_rows = [
        {
            "campaign_id": campaign_id,
            "unit_id": unit.id,
            "worker_id": worker_id,
            "student_id": student_id,
            "student_id_number": number,
            "state": CaseState.SURVEY.value,
            "version": 1,
            "approval_step": 0,
            "objection_open": False,
            "payment_failures": 0,
            "audit_seq": 0,
            "audit_head": "",
            "created_by": actor.username,
            "created_at": now,
            "updated_at": now,
        }
        for worker_id, student_id, number in zip(
            list(worker_ids), list(student_ids), numbers, strict=True
        )
    ]
    try:
        case_ids = list(
            conn.execute(
                insert(case_t).returning(case_t.c.id, sort_by_parameter_order=True), case_rows
            ).scalars()
        )
    except IntegrityError as exc:  # a race lost on the one-application index
        if "uq_active_case_per_student" in str(exc.orig) or "student_id_number" in str(exc.orig):
            # The caller's transaction (or its savepoint) takes the whole call back.
            raise DuplicateStudent(
                "该学生在本次活动中已有在办的申请，不能重复申请",
                {"campaign": campaign_id, "field": "student.id_number"},
            ) from exc
        raise
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
            to_state=CaseState.SURVEY.value,
            opinion=None,
            data={},
            at=now,
        )
        for case_id in case_ids
    ]
    append_entries(conn, audit_t, links)
    conn.execute(
        update(case_t)
        .where(case_t.c.id == bindparam("b_id"))
        .values(audit_seq=1, audit_head=bindparam("b_head")),
        [
            {"b_id": link_id, "b_head": link.hash}
            for link_id, link in zip(case_ids, links, strict=True)
        ],
    )
    count_state_changes(
        conn, [(campaign_id, unit.path, None, CaseState.SURVEY.value)] * len(case_ids)
    )
    return [int(i) for i in case_ids]
