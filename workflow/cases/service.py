"""Creating cases and reading them back."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from jinqiu.states import CaseState
from jinqiu.workflow.audit.chain import append_entries, chain_entry
from jinqiu.workflow.audit.models import AuditEntry
from jinqiu.workflow.banks import bank_of
from jinqiu.workflow.campaigns.models import Campaign
from jinqiu.workflow.campaigns.rules import RULES, CampaignRules
from jinqiu.workflow.cases.counters import count_state_change
from jinqiu.workflow.cases.models import Case, Student, Worker, still_open
from jinqiu.workflow.cases.schema import CaseAmendment, CaseCreate, not_after_today
from jinqiu.workflow.clock import Clock
from jinqiu.workflow.errors import (
    DomainError,
    DuplicateStudent,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from jinqiu.workflow.identity import mask_id_number, parse_id_number
from jinqiu.workflow.money import yuan_to_fen
from jinqiu.workflow.roles import Actor, Grant
from jinqiu.workflow.units.models import Unit
from jinqiu.workflow.validation import validation_failed

case_t = Case.__table__  # type: ignore[attr-defined]
worker_t = Worker.__table__  # type: ignore[attr-defined]
student_t = Student.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
campaign_t = Campaign.__table__  # type: ignore[attr-defined]
audit_t = AuditEntry.__table__  # type: ignore[attr-defined]

CREATE_EVENT = "create"
log = logging.getLogger("jinqiu.cases")


def _duplicate(
    conn: Connection, campaign_id: int, student_id_number: str, actor: Actor, unit_code: str
) -> DuplicateStudent:
    """The refusal says only that the student already applied in this campaign: which unit and
    which case hold that application are outside what the caller may see (another unit's
    subtree). The attempt goes to the log, with the other case, for whoever watches for probing."""
    other = conn.execute(
        select(case_t.c.id, unit_t.c.code)
        .join(unit_t, unit_t.c.id == case_t.c.unit_id)
        .where(
            case_t.c.campaign_id == campaign_id,
            case_t.c.student_id_number == student_id_number,
            still_open(case_t.c.state),
        )
    ).first()
    log.warning(
        "duplicate_student: %s (unit %s) applied in campaign %s for student %s at %s, "
        "who already has case %s at %s",
        actor.username,
        actor.unit_code,
        campaign_id,
        mask_id_number(student_id_number),
        unit_code,
        other.id if other else "?",
        other.code if other else "?",
        extra={"event": "duplicate_student", "actor": actor.username, "campaign": campaign_id},
    )
    return DuplicateStudent(
        "该学生在本次活动中已有在办的申请，不能重复申请",
        {"campaign": campaign_id, "field": "student.id_number"},
    )


def application_problems(rules: CampaignRules, spec: CaseCreate) -> list[dict[str, str]]:
    """The worker's categories are the campaign's; the application type is one of its types
    (required when it declares any); the form holds only that type's fields, each of its kind.
    Required fields and documents are asked at submit (application_complete), not here."""
    details = []
    for i, code in enumerate(spec.worker.categories):
        if code not in rules.categories:
            known = "、".join(f"{c}（{c_spec.label}）" for c, c_spec in rules.categories.items())
            details.append(
                {
                    "field": f"worker.categories.{i}",
                    "code": "unknown_category",
                    "message": f"本活动没有类别 {code}"
                    + (f"，可选：{known}" if known else "，本活动未设类别"),
                }
            )
    types = rules.application_types
    kind = None if spec.application_type is None else types.get(spec.application_type)
    if types and kind is None:
        named = "、".join(f"{c}（{t.label}）" for c, t in types.items())
        details.append(
            {
                "field": "application_type",
                "code": "unknown_application_type",
                "message": f"申请类型须为本活动的：{named}",
            }
        )
    elif not types and spec.application_type is not None:
        details.append(
            {
                "field": "application_type",
                "code": "unknown_application_type",
                "message": "本活动未设申请类型",
            }
        )
    fields = {} if kind is None else {f.key: f for f in kind.fields}
    for key, value in spec.form.items():
        field_spec = fields.get(key)
        if field_spec is None:
            details.append(
                {"field": f"form.{key}", "code": "unknown_field", "message": "申请表没有此项"}
            )
        elif not _fits(field_spec.kind, value):
            details.append(
                {
                    "field": f"form.{key}",
                    "code": "wrong_kind",
                    "message": f"「{field_spec.label}」须为{_KIND_LABELS[field_spec.kind]}",
                }
            )
    return details


_KIND_LABELS = {"text": "文字", "yes_no": "是或否", "year": "年份", "number": "整数"}


def _fits(kind: str, value: object) -> bool:
    if kind == "yes_no":
        return isinstance(value, bool)
    if kind == "year":
        return isinstance(value, int) and not isinstance(value, bool) and 1990 <= value <= 2100
    if kind == "number":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, str)


def create_case(conn: Connection, spec: CaseCreate, *, actor: Actor, clock: Clock) -> int:
    """A new case in `survey`, with its worker and student rows and its first audit entry."""
    if not actor.may(Grant.CREATE_CASE):
        raise PermissionDenied("当前角色无权新建申请")
    not_after_today(
        clock.now().date(),
        worker={"id_number": spec.worker.id_number, "archived_on": spec.worker.archived_on},
        student={"id_number": spec.student.id_number},
    )
    unit = conn.execute(
        select(unit_t.c.id, unit_t.c.path).where(unit_t.c.code == spec.unit)
    ).first()
    if unit is None or not actor.sees(unit.path):
        raise ValidationFailed(
            f"单位 {spec.unit} 不存在",
            [{"field": "unit", "code": "unknown_unit", "message": "单位不存在"}],
        )
    campaign = conn.execute(
        select(campaign_t.c.id, campaign_t.c.rules_token, unit_t.c.path)
        .join(unit_t, unit_t.c.id == campaign_t.c.organizer_unit_id)
        .where(campaign_t.c.id == spec.campaign)
    ).first()
    # A campaign concerns the units under its organiser; anything else is not "there" for this unit.
    if campaign is None or not unit.path.startswith(campaign.path):
        raise ValidationFailed(
            f"活动 {spec.campaign} 不存在",
            [{"field": "campaign", "code": "unknown_campaign", "message": "活动不存在"}],
        )
    problems = application_problems(RULES.get(conn, campaign.id, campaign.rules_token), spec)
    if problems:
        raise ValidationFailed(f"输入有误：{problems[0]['message']}", problems)
    student_number = spec.student.id_number
    active = conn.execute(
        select(case_t.c.id).where(
            case_t.c.campaign_id == spec.campaign,
            case_t.c.student_id_number == student_number,
            still_open(case_t.c.state),
        )
    ).first()
    if active is not None:
        raise _duplicate(conn, spec.campaign, student_number, actor, spec.unit)

    w, s = spec.worker, spec.student
    wid, sid = parse_id_number(w.id_number), parse_id_number(s.id_number)
    worker_values: dict[str, Any] = w.model_dump(exclude={"monthly_income_per_capita"})
    worker_values.update(
        bank_name=None if w.bank_card_number is None else bank_of(w.bank_card_number),
        gender=wid.gender.value,
        birth_date=wid.birth_date,
        monthly_income_per_capita_fen=(
            None
            if w.monthly_income_per_capita is None
            else yuan_to_fen(w.monthly_income_per_capita)
        ),
    )
    worker_id = conn.execute(
        insert(worker_t).values(**worker_values).returning(worker_t.c.id)
    ).scalar_one()
    student_values: dict[str, Any] = s.model_dump(exclude={"tuition_invoice"})
    student_values.update(
        gender=sid.gender.value,
        birth_date=sid.birth_date,
        tuition_invoice_fen=None if s.tuition_invoice is None else yuan_to_fen(s.tuition_invoice),
    )
    student_id = conn.execute(
        insert(student_t).values(**student_values).returning(student_t.c.id)
    ).scalar_one()

    return insert_case(
        conn,
        campaign_id=spec.campaign,
        unit_id=unit.id,
        unit_path=unit.path,
        worker_id=worker_id,
        student_id=student_id,
        student_number=student_number,
        actor=actor,
        at=clock.now(),
        duplicate=lambda: _duplicate(conn, spec.campaign, student_number, actor, spec.unit),
        application_type=spec.application_type,
        form=dict(spec.form),
    )


def insert_case(
    conn: Connection,
    *,
    campaign_id: int,
    unit_id: int,
    unit_path: str,
    worker_id: int,
    student_id: int,
    student_number: str,
    actor: Actor,
    at: dt.datetime,
    duplicate: Callable[[], DomainError],
    renewal_of: int | None = None,
    application_type: str | None = None,
    form: dict[str, Any] | None = None,
) -> int:
    """The case row in `survey` over its worker and student rows, its `create` entry and its
    counters: a new application, or a renewal (续助) of `renewal_of`. A lost race on the
    one-application index raises `duplicate()`."""
    try:
        with conn.begin_nested():  # a lost race on the unique index must not abort the caller
            case_id = conn.execute(
                insert(case_t)
                .values(
                    campaign_id=campaign_id,
                    unit_id=unit_id,
                    worker_id=worker_id,
                    student_id=student_id,
                    student_id_number=student_number,
                    state=CaseState.SURVEY.value,
                    version=1,
                    approval_step=0,
                    objection_open=False,
                    payment_failures=0,
                    follow_up_visits=0,
                    renewal_of=renewal_of,
                    application_type=application_type,
                    form=form or None,
                    audit_seq=0,
                    audit_head="",
                    created_by=actor.username,
                    created_at=at,
                    updated_at=at,
                )
                .returning(case_t.c.id)
            ).scalar_one()
    except IntegrityError as exc:
        if "uq_active_case_per_student" in str(exc.orig) or "student_id_number" in str(exc.orig):
            raise duplicate() from exc
        raise
    link = chain_entry(
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
        data={} if renewal_of is None else {"renewal_of": renewal_of},
        at=at,
    )
    append_entries(conn, audit_t, [link])
    conn.execute(
        case_t.update().where(case_t.c.id == case_id).values(audit_seq=1, audit_head=link.hash)
    )
    count_state_change(conn, campaign_id, unit_path, None, CaseState.SURVEY.value)
    return int(case_id)


def case_history(conn: Connection, case_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(select(audit_t).where(audit_t.c.case_id == case_id).order_by(audit_t.c.seq))
    return [
        {
            "event": r.event,
            "from": r.from_state,
            "to": r.to_state,
            "actor": r.actor,
            "unit": r.actor_unit,
            "opinion": r.opinion,
            "data": r.data,
            "at": r.at.isoformat(),
        }
        for r in rows
    ]


def get_case_row(conn: Connection, case_id: int) -> Any:
    row = conn.execute(select(case_t).where(case_t.c.id == case_id)).first()
    if row is None:
        raise NotFound(f"案件 {case_id} 不存在")
    return row


AMEND_EVENT = "amend"


def amend_case(
    conn: Connection,
    case_id: int,
    *,
    worker_changes: dict[str, Any],
    student_changes: dict[str, Any],
    expected_version: int | None,
    actor: Actor,
    clock: Clock,
) -> int:
    """Corrects the survey form of a case in `survey` (补正). Bumps the version and appends an
    audit entry listing old and new values; returns the new version. Only the fields of the
    correction form (CaseAmendment), within its limits: anything else is ValidationFailed
    naming the field, before anything is read."""
    from jinqiu.workflow.errors import Conflict, VersionConflict

    if not actor.may(Grant.CREATE_CASE):
        raise PermissionDenied("当前角色无权修改申请")
    try:
        amendment = CaseAmendment.model_validate(
            {"worker": worker_changes, "student": student_changes}
        )
    except ValidationError as exc:
        raise validation_failed(exc) from exc
    worker_changes = amendment.worker.model_dump(exclude_unset=True)
    if "bank_card_number" in worker_changes:  # the bank follows the card
        card = worker_changes["bank_card_number"]
        worker_changes["bank_name"] = None if card is None else bank_of(card)
    student_changes = amendment.student.model_dump(exclude_unset=True)
    row = conn.execute(
        select(case_t, unit_t.c.path)
        .join(unit_t, unit_t.c.id == case_t.c.unit_id)
        .where(case_t.c.id == case_id)
    ).first()
    if row is None or not actor.sees(row.path):
        raise NotFound(f"案件 {case_id} 不存在")
    if expected_version is not None and row.version != expected_version:
        raise VersionConflict(
            "案件已被他人修改，请刷新后重试",
            {"expected_version": expected_version, "current_version": row.version},
        )
    if row.state != CaseState.SURVEY.value:
        raise Conflict("只有摸底申报状态的案件可以修改，请先退回补正", {"state": row.state})
    not_after_today(clock.now().date(), worker=worker_changes, student=student_changes)
    changes: dict[str, Any] = {}
    for table, key, new_values in (
        (worker_t, row.worker_id, worker_changes),
        (student_t, row.student_id, student_changes),
    ):
        if not new_values:
            continue
        old = conn.execute(select(table).where(table.c.id == key)).one()._asdict()
        diff = {k: v for k, v in new_values.items() if old.get(k) != v}
        if diff:
            conn.execute(table.update().where(table.c.id == key).values(**diff))
            prefix = "worker" if table is worker_t else "student"
            for k, v in diff.items():
                changes[f"{prefix}.{k}"] = {"from": _plain(old.get(k)), "to": _plain(v)}
    if not changes:  # the form as it was (saved twice, a retry): no correction, nothing written
        return int(row.version)
    return append_case_entry(
        conn, row, actor=actor, event=AMEND_EVENT, opinion=None, data={"changes": changes},
        at=clock.now(),
    )  # fmt: skip


def append_case_entry(
    conn: Connection,
    row: Any,
    *,
    actor: Actor,
    event: str,
    opinion: str | None,
    data: dict[str, Any],
    at: dt.datetime,
) -> int:
    """An entry on the case's audit chain that is no transition (a correction, a document):
    the case's version bumped with it, checked against `row` (the case as read: id, state,
    version and chain head), in the caller's transaction. Returns the new version."""
    from jinqiu.workflow.errors import VersionConflict

    link = chain_entry(
        subject_column="case_id",
        subject_id=row.id,
        head_seq=row.audit_seq,
        head_hash=row.audit_head,
        actor=actor.username,
        actor_unit=actor.unit_code,
        event=event,
        from_state=row.state,
        to_state=row.state,
        opinion=opinion,
        data=data,
        at=at,
    )
    written = conn.execute(
        case_t.update()
        .where(case_t.c.id == row.id, case_t.c.version == row.version)
        .values(version=row.version + 1, audit_seq=link.seq, audit_head=link.hash, updated_at=at)
    )
    if written.rowcount != 1:
        raise VersionConflict("案件已被他人修改，请刷新后重试", {"expected_version": row.version})
    append_entries(conn, audit_t, [link])
    return int(row.version + 1)


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value
