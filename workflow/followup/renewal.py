"""Continuing aid (续助, Dalian: 以奖学金形式实施资助直至完成学业): a paid case's student applies
again in a later campaign without the family being surveyed anew.

The renewal is a new case in `survey` for the target campaign, at the same unit, over copies of
the old case's worker and student rows (each case keeps the form as it was filed), linked by
`renewal_of`; it then goes through the machine as any case does — this year's enrolment proof
attached, the archive checked afresh (`worker_is_eligible` on submit and verify). The old case's
chain records a `renew` entry naming the new case.

Refused, every reason at once (422 guard_failed): the old case was never paid (`not_paid`), the
target campaign is not of a later year (`not_later_year`), the student has graduated by the
target year — enrollment_year + program_years ≤ that year, or a visit found them graduated —
(`graduated`), the family left the archive, 脱困退出 (`archive_exited`). A renewal of the case
into that campaign already there (not withdrawn or rejected): 409 renewal_exists."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select

from jinqiu.states import ENDED_WITHOUT_AID, CaseState
from jinqiu.workflow.campaigns.models import Campaign
from jinqiu.workflow.cases.models import Case, Student, Worker
from jinqiu.workflow.cases.service import append_case_entry, insert_case
from jinqiu.workflow.clock import Clock
from jinqiu.workflow.errors import (
    DomainError,
    DuplicateStudent,
    GuardFailed,
    NotFound,
    PermissionDenied,
    Reason,
    RenewalExists,
    ValidationFailed,
)
from jinqiu.workflow.followup.models import FollowUpVisit, Situation
from jinqiu.workflow.roles import Actor, Grant
from jinqiu.workflow.units.models import Unit

case_t = Case.__table__  # type: ignore[attr-defined]
worker_t = Worker.__table__  # type: ignore[attr-defined]
student_t = Student.__table__  # type: ignore[attr-defined]
campaign_t = Campaign.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
visit_t = FollowUpVisit.__table__  # type: ignore[attr-defined]

RENEW_EVENT = "renew"  # on the old case's chain, naming the renewal
# A case was paid when it reached follow-up; closed cases were paid before they closed.
PAID_STATES = (CaseState.FOLLOW_UP.value, CaseState.CLOSED.value)
_ENDED = [s.value for s in ENDED_WITHOUT_AID]


def renewal_reasons(
    *, state: str, old_year: int, new_year: int, student: Any, graduated_on_visit: bool,
    archive_exited: bool,
) -> list[Reason]:  # fmt: skip
    """Why this case cannot be renewed into a campaign of `new_year` (empty: it can)."""
    reasons = []
    if state not in PAID_STATES:
        reasons.append(Reason("not_paid", "原案件尚未发放助学金（须处于回访或办结状态），不能续助"))
    if new_year <= old_year:
        reasons.append(
            Reason("not_later_year", f"续助须转入以后年度的活动（原案件为{old_year}年度）")
        )
    ends = (
        None
        if student.enrollment_year is None or student.program_years is None
        else student.enrollment_year + student.program_years
    )
    if graduated_on_visit:
        reasons.append(Reason("graduated", "回访记录显示该学生已毕业，不再续助"))
    elif ends is not None and ends <= new_year:
        reasons.append(
            Reason(
                "graduated",
                f"该学生{student.enrollment_year}年入学、学制{student.program_years}年，"
                f"{new_year}年已毕业，不再续助",
            )
        )
    if archive_exited:
        reasons.append(Reason("archive_exited", "该职工家庭已脱困退出困难职工档案，不再续助"))
    return reasons


def renew_case(
    conn: Connection, case_id: int, *, campaign_id: int, actor: Actor, clock: Clock
) -> int:
    """The renewal's id. Refusals: PermissionDenied, NotFound (outside the subtree),
    ValidationFailed (`campaign` unknown or not this unit's), GuardFailed, RenewalExists,
    DuplicateStudent (the student already applied in that campaign otherwise)."""
    if not actor.may(Grant.CREATE_CASE):
        raise PermissionDenied("当前角色无权办理续助")
    old = conn.execute(
        select(case_t, unit_t.c.path, campaign_t.c.year.label("year"))
        .join(unit_t, unit_t.c.id == case_t.c.unit_id)
        .join(campaign_t, campaign_t.c.id == case_t.c.campaign_id)
        .where(case_t.c.id == case_id)
        .with_for_update(of=case_t)  # two renewals of one case queue here (PostgreSQL)
    ).first()
    if old is None or not actor.sees(old.path):
        raise NotFound(f"案件 {case_id} 不存在")
    target = conn.execute(
        select(campaign_t.c.id, campaign_t.c.year, unit_t.c.path)
        .join(unit_t, unit_t.c.id == campaign_t.c.organizer_unit_id)
        .where(campaign_t.c.id == campaign_id)
    ).first()
    # The campaign must concern the case's unit, as for a new application.
    if target is None or not old.path.startswith(target.path):
        raise ValidationFailed(
            f"活动 {campaign_id} 不存在",
            [{"field": "campaign", "code": "unknown_campaign", "message": "活动不存在"}],
        )
    if _renewal_in(conn, case_id, campaign_id) is not None:
        raise _exists(conn, case_id, campaign_id)
    worker = conn.execute(select(worker_t).where(worker_t.c.id == old.worker_id)).one()
    student = conn.execute(select(student_t).where(student_t.c.id == old.student_id)).one()
    graduated = conn.execute(
        select(visit_t.c.id).where(
            visit_t.c.case_id == case_id, visit_t.c.situation == Situation.GRADUATED.value
        )
    ).first()
    reasons = renewal_reasons(
        state=old.state,
        old_year=old.year,
        new_year=target.year,
        student=student,
        graduated_on_visit=graduated is not None,
        archive_exited=worker.archive_exited_on is not None,
    )
    if reasons:
        raise GuardFailed(reasons)
    worker_values = {k: v for k, v in worker._asdict().items() if k != "id"}
    student_values = {k: v for k, v in student._asdict().items() if k != "id"}
    worker_id = conn.execute(
        insert(worker_t).values(**worker_values).returning(worker_t.c.id)
    ).scalar_one()
    student_id = conn.execute(
        insert(student_t).values(**student_values).returning(student_t.c.id)
    ).scalar_one()
    now = clock.now()
    new_id = insert_case(
        conn,
        campaign_id=campaign_id,
        unit_id=old.unit_id,
        unit_path=old.path,
        worker_id=worker_id,
        student_id=student_id,
        student_number=old.student_id_number,
        actor=actor,
        at=now,
        duplicate=lambda: _exists(conn, case_id, campaign_id),
        renewal_of=case_id,
    )
    append_case_entry(
        conn, old, actor=actor, event=RENEW_EVENT, opinion=None,
        data={"renewal": new_id, "campaign": campaign_id}, at=now,
    )  # fmt: skip
    return new_id


def _renewal_in(conn: Connection, case_id: int, campaign_id: int) -> int | None:
    found = conn.execute(
        select(case_t.c.id).where(
            case_t.c.renewal_of == case_id,
            case_t.c.campaign_id == campaign_id,
            case_t.c.state.not_in(_ENDED),
        )
    ).first()
    return None if found is None else int(found.id)


def _exists(conn: Connection, case_id: int, campaign_id: int) -> DomainError:
    """A renewal already there (409 renewal_exists), or the student applied in that campaign
    some other way (409 duplicate_student)."""
    renewal = _renewal_in(conn, case_id, campaign_id)
    if renewal is not None:
        return RenewalExists(
            f"案件 {case_id} 已续助到该活动（案件 {renewal}）",
            {"case_id": renewal, "campaign": campaign_id},
        )
    return DuplicateStudent(
        "该学生在该活动中已有在办的申请，不能重复申请", {"campaign": campaign_id}
    )
