"""Reading cases for people: one case with its household, and filtered, scoped lists.
Personal numbers leave only through workflow.cases.pii (masked, or in full and recorded)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, exists, func, or_, select

from jinqiu.states import CaseEvent, CaseState
from jinqiu.workflow.campaigns.models import Campaign, CampaignStateDeadline, FundSource
from jinqiu.workflow.campaigns.rules import RULES, CampaignRules
from jinqiu.workflow.campaigns.schema import Priority
from jinqiu.workflow.cases import priority
from jinqiu.workflow.cases.aid import describe_bounds
from jinqiu.workflow.cases.engine import allowed_events, current_approval_level, load_context
from jinqiu.workflow.cases.facts import GuardContext
from jinqiu.workflow.cases.models import Attachment, Case, Student, Worker
from jinqiu.workflow.errors import NotFound, Reason
from jinqiu.workflow.money import format_yuan
from jinqiu.workflow.roles import Actor
from jinqiu.workflow.units.models import Unit, in_subtree

case_t = Case.__table__  # type: ignore[attr-defined]
worker_t = Worker.__table__  # type: ignore[attr-defined]
student_t = Student.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
campaign_t = Campaign.__table__  # type: ignore[attr-defined]
fund_t = FundSource.__table__  # type: ignore[attr-defined]
leave_t = CampaignStateDeadline.__table__  # type: ignore[attr-defined]
attachment_t = Attachment.__table__  # type: ignore[attr-defined]


def in_scope(query: Select[Any], actor: Actor) -> Select[Any]:
    """Only cases of units inside the actor's subtree."""
    return query.where(in_subtree(unit_t.c.path, actor.unit_path))


def case_detail(conn: Connection, case_id: int, actor: Actor, *, today: dt.date) -> dict[str, Any]:
    row = conn.execute(
        in_scope(
            select(case_t, unit_t.c.code.label("unit_code"), unit_t.c.name.label("unit_name"))
            .join(unit_t, unit_t.c.id == case_t.c.unit_id)
            .where(case_t.c.id == case_id),
            actor,
        )
    ).first()
    if row is None:
        raise NotFound(f"案件 {case_id} 不存在")
    worker = conn.execute(select(worker_t).where(worker_t.c.id == row.worker_id)).one()
    student = conn.execute(select(student_t).where(student_t.c.id == row.student_id)).one()
    facts, _ = load_context(conn, case_id, today=today)
    fund_source = None
    if row.fund_source_id is not None:
        fund_source = conn.execute(
            select(fund_t.c.source).where(fund_t.c.id == row.fund_source_id)
        ).scalar_one()
    level = current_approval_level(facts.case, facts.campaign)
    asked = facts.campaign.opinion_at(CaseEvent.APPROVE, level) if level is not None else None
    return {
        "case": row._asdict(),
        "worker": worker._asdict(),
        "student": student._asdict(),
        "fund_source": fund_source,
        "approval_level": level,
        "application": _application(conn, case_id, facts.campaign, row.application_type),
        "allowed_events": [e.value for e in allowed_events(actor, facts.case, facts.campaign)],
        # What the approval form asks at this level: the notice's opinion (审查/审核/审批意见)
        # and, at the last level, the amount the approver may set within the rule.
        "approval_opinion": None if asked is None else {"label": asked[0], "required": asked[1]},
        "amount_rule": amount_rule(facts) if level is not None else None,
    }


def amount_rule(facts: GuardContext) -> dict[str, Any] | None:
    """At the last level, a rule whose amount the approver sets (a range, a ceiling) or may
    raise (an uplift): its bounds, in words, and where it comes from."""
    case, rule = facts.case, facts.aid_rule
    if not case.approval_chain or case.pending_step() != case.approval_chain[-1]:
        return None
    if isinstance(rule, Reason) or not (rule.approver_sets_amount or rule.uplift is not None):
        return None
    text = describe_bounds(
        rule, rule.min_fen if rule.approver_sets_amount else rule.cap_fen, rule.cap_fen
    )
    if rule.uplift is not None:
        text += f"；{rule.uplift.when}可适当提高，最多再加{format_yuan(rule.uplift.max_fen)}元"
    return {
        "bounds": text,
        "required": rule.approver_sets_amount,
        "source": rule.source,
        "local_decision": rule.local_decision,
    }


def _application(
    conn: Connection, case_id: int, rules: CampaignRules, code: str | None
) -> dict[str, Any]:
    """The case's application type and the documents it requires, each attached or not."""
    kind = None if code is None else rules.application_types.get(code)
    if kind is None:
        return {"type": code, "label": None, "documents": []}
    attached = set(
        conn.execute(
            select(attachment_t.c.kind).where(attachment_t.c.case_id == case_id).distinct()
        ).scalars()
    )
    return {
        "type": code,
        "label": kind.label,
        "documents": [
            {"kind": d.kind.value, "label": d.label, "attached": d.kind.value in attached}
            for d in kind.documents
        ],
    }


@dataclass(frozen=True)
class CaseFilter:
    campaign: int | None = None
    state: CaseState | None = None
    unit: str | None = None  # a unit code: its whole subtree
    overdue: bool | None = None
    q: str | None = None
    approval_step: int | None = None
    states: tuple[CaseState, ...] = ()  # any of these (the work queue)
    step_states: tuple[CaseState, ...] = ()  # approval_step filters only these (empty: all)
    page: int = 1
    page_size: int = 50


def list_cases(
    conn: Connection, actor: Actor, flt: CaseFilter, *, today: dt.date
) -> tuple[list[dict[str, Any]], int]:
    query: Select[Any] = (
        select(
            case_t.c.id,
            case_t.c.campaign_id,
            case_t.c.state,
            case_t.c.version,
            case_t.c.approval_step,
            case_t.c.objection_open,
            case_t.c.publicity_ends_on,
            case_t.c.approved_amount_fen,
            case_t.c.updated_at,
            case_t.c.return_reason,
            unit_t.c.code.label("unit_code"),
            unit_t.c.name.label("unit_name"),
            worker_t.c.name.label("worker_name"),
            student_t.c.name.label("student_name"),
            student_t.c.education_level,
            student_t.c.school,
        )
        .join(unit_t, unit_t.c.id == case_t.c.unit_id)
        .join(worker_t, worker_t.c.id == case_t.c.worker_id)
        .join(student_t, student_t.c.id == case_t.c.student_id)
    )
    query = in_scope(query, actor)
    if flt.campaign is not None:
        query = query.where(case_t.c.campaign_id == flt.campaign)
    if flt.state is not None:
        query = query.where(case_t.c.state == flt.state.value)
    if flt.states:
        query = query.where(case_t.c.state.in_([s.value for s in flt.states]))
    if flt.approval_step is not None:
        at_step = case_t.c.approval_step == flt.approval_step
        if flt.step_states:  # the queue: other states' cases are not waiting at a level
            at_step = or_(case_t.c.state.not_in([s.value for s in flt.step_states]), at_step)
        query = query.where(at_step)
    if flt.unit is not None:
        unit = conn.execute(select(unit_t.c.path).where(unit_t.c.code == flt.unit)).first()
        if unit is None or not actor.sees(unit.path):
            raise NotFound(f"单位 {flt.unit} 不存在")
        query = query.where(in_subtree(unit_t.c.path, unit.path))
    if flt.overdue is not None:
        overdue = overdue_condition(today)
        query = query.where(overdue if flt.overdue else ~overdue)
    if flt.q:
        like = f"%{flt.q}%"
        query = query.where(
            or_(
                worker_t.c.name.like(like),
                student_t.c.name.like(like),
                student_t.c.school.like(like),
            )
        )
    total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    # A campaign that puts some cases first when money runs short lists them first (the order
    # its bulk approval shares the funds out in), each with the criteria it meets.
    chosen = None
    if flt.campaign is not None:
        chosen = conn.execute(
            select(campaign_t.c.aid_priority, campaign_t.c.year).where(
                campaign_t.c.id == flt.campaign
            )
        ).first()
    rank = (
        None
        if chosen is None or chosen.aid_priority is None
        else Priority.model_validate(chosen.aid_priority)
    )
    if rank is not None:
        assert chosen is not None
        query = query.add_columns(worker_t.c.archive_status, student_t.c.enrollment_year)
    rows = conn.execute(
        query.order_by(*priority.order_columns(rank, chosen.year if chosen else 0), case_t.c.id)
        .limit(flt.page_size)
        .offset((flt.page - 1) * flt.page_size)
    )
    out: list[dict[str, Any]] = []
    for r in rows:
        row = r._asdict()
        if rank is not None and chosen is not None:
            applicant = priority.applicant_of(r, chosen.year)
            row.pop("archive_status")
            row.pop("enrollment_year")
            row["priority"] = priority.priority_labels(applicant, rank)
        else:
            row["priority"] = []
        out.append(row)
    return out, int(total)


def overdue_condition(today: dt.date) -> Any:
    """A case is overdue once the phase by whose end it should have left its state has ended."""
    return exists().where(
        leave_t.c.campaign_id == case_t.c.campaign_id,
        leave_t.c.state == case_t.c.state,
        leave_t.c.leave_by < today,
    )


__all__ = ["RULES", "CaseFilter", "case_detail", "list_cases"]
