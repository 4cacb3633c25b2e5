"""A publicity list as its faces show it: the JSON, the printable notice and the pages. Given
names masked (张*明), never an identity number; the amount is what the campaign's rules give
the student (the figure the notice announces; the reservation comes at the last approval)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, select

from jinqiu.states.publicity_list import ListState
from jinqiu.workflow.campaigns.rules import RULES
from jinqiu.workflow.cases.aid import AidDecision, decide_aid
from jinqiu.workflow.cases.models import Student, Worker
from jinqiu.workflow.cases.priority import applicant_of
from jinqiu.workflow.errors import Reason
from jinqiu.workflow.masking import mask_given_name
from jinqiu.workflow.money import format_yuan
from jinqiu.workflow.publicity_lists.engine import (
    campaign_t,
    case_t,
    list_t,
    member_t,
    objection_t,
    period,
    unit_t,
)
from jinqiu.workflow.units.models import in_subtree

student_t = Student.__table__  # type: ignore[attr-defined]
worker_t = Worker.__table__  # type: ignore[attr-defined]


def list_view(conn: Connection, list_id: int, *, today: dt.date) -> dict[str, Any]:
    """The list with its rows (members still on it, by case id) and its objections. A draft
    shows the period it would run if published `today`."""
    head = conn.execute(
        select(
            list_t,
            unit_t.c.code.label("unit_code"),
            unit_t.c.name.label("unit_name"),
            unit_t.c.contact_name,
            unit_t.c.contact_phone,
            unit_t.c.contact_email,
            campaign_t.c.name.label("campaign_name"),
            campaign_t.c.rules_token,
        )
        .join(unit_t, unit_t.c.id == list_t.c.unit_id)
        .join(campaign_t, campaign_t.c.id == list_t.c.campaign_id)
        .where(list_t.c.id == list_id)
    ).one()
    rules = RULES.get(conn, head.campaign_id, head.rules_token)
    starts_on, ends_on = head.starts_on, head.ends_on
    if head.state == ListState.DRAFT.value:
        planned = period(rules.calendar, today, head.requested_starts_on, head.working_days)
        if not isinstance(planned, Reason):
            starts_on, ends_on = planned
    members = conn.execute(
        select(
            case_t.c.id,
            case_t.c.state,
            student_t.c.name,
            student_t.c.school,
            student_t.c.education_level,
            student_t.c.tier,
            student_t.c.tuition_invoice_fen,
            student_t.c.enrollment_year,
            worker_t.c.archive_status,
            worker_t.c.categories,
        )
        .join(member_t, member_t.c.case_id == case_t.c.id)
        .join(student_t, student_t.c.id == case_t.c.student_id)
        .join(worker_t, worker_t.c.id == case_t.c.worker_id)
        .where(member_t.c.list_id == list_id, member_t.c.active)
        .order_by(case_t.c.id)
    ).all()
    rows = []
    for m in members:
        # An amount the last approver sets (a range, a ceiling) is not known yet: none shown.
        aid = decide_aid(rules.aid_rules, applicant_of(m, rules.year))
        rows.append(
            {
                "case_id": m.id,
                "name": mask_given_name(m.name),
                "school": m.school or "",
                "education_level": m.education_level,
                "amount": format_yuan(aid.amount_fen) if isinstance(aid, AidDecision) else None,
            }
        )
    objections = [
        {
            "id": o.id,
            "case_id": o.case_id,
            "objector": o.objector,
            "received_on": o.received_on,
            "status": o.status,
            "reason": o.reason,
        }
        for o in conn.execute(
            select(objection_t).where(objection_t.c.list_id == list_id).order_by(objection_t.c.id)
        )
    ]
    return {
        "id": head.id,
        "campaign": head.campaign_id,
        "campaign_name": head.campaign_name,
        "unit": head.unit_code,
        "unit_name": head.unit_name,
        "contact_name": head.contact_name or "",
        "contact_phone": head.contact_phone or "",
        "contact_email": head.contact_email or "",
        "status": head.state,
        "version": head.version,
        "starts_on": starts_on,
        "ends_on": ends_on,
        "working_days": head.working_days,
        "case_ids": [r["case_id"] for r in rows],
        "rows": rows,
        "objections": objections,
    }


def lists_of(conn: Connection, campaign_id: int, unit_path: str) -> list[dict[str, Any]]:
    """The lists of a subtree for a campaign, newest first (the pages' index)."""
    return [
        {"id": r.id, "unit": r.code, "status": r.state, "starts_on": r.starts_on,
         "ends_on": r.ends_on}
        for r in conn.execute(
            select(list_t.c.id, list_t.c.state, list_t.c.starts_on, list_t.c.ends_on, unit_t.c.code)
            .join(unit_t, unit_t.c.id == list_t.c.unit_id)
            .where(list_t.c.campaign_id == campaign_id, in_subtree(unit_t.c.path, unit_path))
            .order_by(list_t.c.id.desc())
        )
    ]  # fmt: skip
