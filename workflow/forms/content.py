"""What a printed form says (the boxes of the notice's paper form, filled): Dalian's approval
registration forms (附件1 当年考入大学 / 附件2 大学在读) and Weihai's 摸底表 (附件3), for one case
or, the 摸底表, for a unit's cases. Pure reading: the case comes through workflow.cases.pii (so
identity numbers are masked unless the caller holds pii.read, and a full read is recorded in
the caller's transaction), each level's opinion, reviewer and date from the case's audit trail.

Which form a case gets is the campaign's (its file's `forms`, the first one); the code never
guesses it from the organiser. Dalian's two forms are told apart by the student: one who
enrolls in the campaign's year (入学年份 = the campaign year) is 当年考入 (附件1), any other 在读
(附件2) — the notice's own split by 考入 year."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, select

from jinqiu.states import CaseEvent, CaseState
from jinqiu.workflow.campaigns.models import Campaign
from jinqiu.workflow.cases.models import Case, Student, Worker
from jinqiu.workflow.cases.pii import view_case
from jinqiu.workflow.cases.reads import CaseFilter, list_cases
from jinqiu.workflow.clock import CHINA, Clock
from jinqiu.workflow.errors import NotFound, ValidationFailed
from jinqiu.workflow.identity import mask_id_number
from jinqiu.workflow.money import format_yuan
from jinqiu.workflow.roles import Actor
from jinqiu.workflow.units.models import Unit
from jinqiu.workflow.users.models import User

campaign_t = Campaign.__table__  # type: ignore[attr-defined]
case_t = Case.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
user_t = User.__table__  # type: ignore[attr-defined]
student_t = Student.__table__  # type: ignore[attr-defined]
worker_t = Worker.__table__  # type: ignore[attr-defined]

DALIAN_FRESHMAN = "dalian_freshman"  # 附件1 当年考入大学学生“金秋助学”审批登记表
DALIAN_ENROLLED = "dalian_enrolled"  # 附件2 大学在读学生“金秋助学”审批登记表
WEIHAI_SURVEY = "weihai_survey"  # 附件3 困难职工子女金秋助学情况摸底表
TITLES = {
    DALIAN_FRESHMAN: ("附件1", "当年考入大学学生“金秋助学”审批登记表"),
    DALIAN_ENROLLED: ("附件2", "大学在读学生“金秋助学”审批登记表"),
    WEIHAI_SURVEY: ("附件3", "困难职工子女金秋助学情况摸底表"),
}
# The opinion boxes of Dalian's forms, by the level that writes them; a campaign's own levels
# (its approval_levels) decide which boxes a form has.
LEVEL_BOXES = {
    "grassroots": "企业工会（街道工会）审查意见",
    "district": "区市县、产业工会审核意见",
    "city": "市总工会审批意见",
    "province": "省总工会审批意见",
}
REVIEWER_TITLES = {
    "grassroots": "企事业单位、街道工会审查人",
    "district": "区市县总工会、产业工会审核人",
}
EDUCATION = {
    "preschool": "学前",
    "primary": "小学",
    "junior": "初中",
    "senior": "高中",
    "vocational": "中职",
    "college": "大专",
    "undergraduate": "本科",
    "postgraduate": "研究生",
}
GENDER = {"male": "男", "female": "女"}
ARCHIVED = ("deep", "relative", "accident")
# What a unit's 摸底表 holds at most: one printed table, the case list's own page bound.
MAX_SURVEY_ROWS = 500
# Entries on the trail that are a level's word on the case while it waits for approval.
_LEVEL_EVENTS = (CaseEvent.APPROVE, CaseEvent.RETURN, CaseEvent.REJECT)


def local_date(at: str | dt.datetime) -> dt.date:
    moment = dt.datetime.fromisoformat(at) if isinstance(at, str) else at
    if moment.tzinfo is None:
        return moment.date()
    return moment.astimezone(CHINA).date()


def form_of(campaign_forms: list[str], student: dict[str, Any], year: int) -> str:
    """The case's form: the campaign's first; Dalian's by the student's year of enrolment."""
    if not campaign_forms:
        raise NotFound("本活动未规定登记表")
    first = campaign_forms[0]
    if first == "dalian_approval":
        return DALIAN_FRESHMAN if student.get("enrollment_year") == year else DALIAN_ENROLLED
    return first


def level_opinions(
    conn: Connection, history: list[dict[str, Any]], levels: list[str]
) -> list[dict[str, Any]]:
    """One box per campaign level: the latest approve, return or reject written at that level
    while the case waited for approval — its opinion, the reviewer's name and the day (local)."""
    latest: dict[str, dict[str, Any]] = {}
    units = {
        r.code: r.level
        for r in conn.execute(
            select(unit_t.c.code, unit_t.c.level).where(
                unit_t.c.code.in_({e["unit"] for e in history if e["unit"]})
            )
        )
    }
    for entry in history:
        if entry["from"] != CaseState.APPROVAL or entry["event"] not in _LEVEL_EVENTS:
            continue
        level = (entry["data"] or {}).get("approval_level") or units.get(entry["unit"])
        if level in levels:
            latest[level] = entry
    names = {
        r.username: r.display_name
        for r in conn.execute(
            select(user_t.c.username, user_t.c.display_name).where(
                user_t.c.username.in_({e["actor"] for e in latest.values()})
            )
        )
    }
    boxes = []
    # An approval given without words is printed as 同意 (a local decision: the paper box is
    # never left empty for a level that approved).
    for level in levels:
        said = latest.get(level)
        box: dict[str, Any] = {"level": level, "title": LEVEL_BOXES[level]}
        if said is None:
            box.update(event=None, opinion=None, reviewer=None, on=None)
        else:
            box.update(
                event=said["event"],
                opinion=said["opinion"] or "同意",
                reviewer=names.get(said["actor"], said["actor"]),
                on=local_date(said["at"]),
            )
        boxes.append(box)
    return boxes


def filled_on(history: list[dict[str, Any]]) -> dt.date | None:
    """The day the unit filed the form (Dalian's "单位：　年　月　日"): its latest submit (a case
    returned for correction is filed again), local; None before it is submitted."""
    submits = [e for e in history if e["event"] == CaseEvent.SUBMIT]
    return local_date(submits[-1]["at"]) if submits else None


def case_form(
    conn: Connection, case_id: int, actor: Actor, *, clock: Clock, purpose: str
) -> dict[str, Any]:
    """The filled form of one case. Identity numbers in full only for a pii.read holder, and
    then recorded (pii_access) on `conn`, which must then be a writing transaction."""
    view = view_case(conn, case_id, actor, purpose=purpose, clock=clock, history=True)
    assert view.detail is not None and view.history is not None
    case, worker, student = view.detail["case"], view.detail["worker"], view.detail["student"]
    campaign = conn.execute(
        select(campaign_t.c.name, campaign_t.c.year, campaign_t.c.forms,
               campaign_t.c.approval_levels).where(campaign_t.c.id == case["campaign_id"])
    ).one()  # fmt: skip
    kind = form_of(list(campaign.forms), student, campaign.year)
    attachment, title = TITLES[kind]
    boxes = level_opinions(conn, view.history, list(campaign.approval_levels))
    by_level = {b["level"]: b for b in boxes}
    return {
        "kind": kind,
        "attachment": attachment,
        "title": title,
        "campaign_name": campaign.name,
        "case_id": case_id,
        "unit_name": case["unit_name"],
        "printed_on": clock.now().date(),
        "filled_on": filled_on(view.history),
        "in_full": view.in_full,
        "worker": {
            **worker,
            "gender_label": GENDER.get(worker["gender"], worker["gender"]),
            "birth_month": f"{worker['birth_date'].year}年{worker['birth_date'].month}月",
            "income": _yuan(worker["monthly_income_per_capita_fen"]),
        },
        "student": {
            **student,
            "education": EDUCATION.get(student["education_level"], student["education_level"]),
            "age": _age(student["birth_date"], clock.now().date()),
            "school_and_major": "　".join(
                p for p in (student["admitted_school"] or student["school"], student["major"]) if p
            ),
            "current": student["education_level"] not in ("preschool",),
            "exam_this_year": student["enrollment_year"] == campaign.year,
        },
        "boxes": boxes,
        "reviewers": [
            {"title": t, "name": by_level[lvl]["reviewer"] if lvl in by_level else None}
            for lvl, t in REVIEWER_TITLES.items()
        ],
        "archived": worker["archive_status"] in ARCHIVED,
        "migrant_worker": "migrant_worker" in (worker["categories"] or []),
        "aided_here": case["approved_amount_fen"] is not None,
        "amount": _yuan(case["approved_amount_fen"]),
        "paid_on": case["paid_on"],
        "state": case["state"],
    }


def unit_survey(
    conn: Connection, campaign_id: int, unit_code: str, actor: Actor, *, clock: Clock
) -> dict[str, Any]:
    """A unit's 摸底表 (Weihai 附件3 as one table): every case of the campaign in the unit's
    subtree, at most MAX_SURVEY_ROWS; identity numbers always masked (a list for the wall,
    not a read of anyone's numbers: the case's own form shows them in full to pii.read)."""
    today = clock.now().date()
    flt = CaseFilter(campaign=campaign_id, unit=unit_code, page_size=MAX_SURVEY_ROWS)
    rows, total = list_cases(conn, actor, flt, today=today)
    if total > MAX_SURVEY_ROWS:
        raise ValidationFailed(
            f"该单位本活动共 {total} 件申请，超过一张摸底表的上限 {MAX_SURVEY_ROWS}，请按下级单位分别打印",
            [{"field": "unit", "code": "too_many_rows", "message": f"至多 {MAX_SURVEY_ROWS} 行"}],
        )
    ids = [r["id"] for r in rows]
    people = conn.execute(
        select(case_t.c.id, worker_t.c.name.label("worker_name"), student_t)
        .join(worker_t, worker_t.c.id == case_t.c.worker_id)
        .join(student_t, student_t.c.id == case_t.c.student_id)
        .where(case_t.c.id.in_(ids))
        .order_by(case_t.c.id)
    ).all()
    unit = conn.execute(select(unit_t.c.name).where(unit_t.c.code == unit_code)).scalar_one()
    campaign = conn.execute(
        select(campaign_t.c.name, campaign_t.c.year).where(campaign_t.c.id == campaign_id)
    ).one()
    return {
        "kind": WEIHAI_SURVEY,
        "attachment": TITLES[WEIHAI_SURVEY][0],
        "title": TITLES[WEIHAI_SURVEY][1],
        "campaign_name": campaign.name,
        "unit_name": unit,
        "printed_on": today,
        "rows": [
            {
                "case_id": p.id,
                "worker_name": p.worker_name,
                "name": p.name,
                "relation": p.relation,
                "age": _age(p.birth_date, today),
                "ethnicity": p.ethnicity,
                "political_status": p.political_status,
                "id_number": mask_id_number(p.id_number),
                "hukou_type": p.hukou_type,
                "health_status": p.health_status,
                "medical_insurance": p.medical_insurance,
                "education": EDUCATION.get(p.education_level, p.education_level),
                "enrollment_year": p.enrollment_year,
                "program_years": p.program_years,
                "school": p.school,
                "exam_score": p.exam_score if p.enrollment_year == campaign.year else None,
                "admitted_school": p.admitted_school
                if p.enrollment_year == campaign.year
                else None,
                "remark": p.already_aided_by,
            }
            for p in people
        ],
    }


def _yuan(fen: int | None) -> str | None:
    return None if fen is None else format_yuan(fen)


def _age(born: dt.date, today: dt.date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))
