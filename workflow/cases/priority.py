"""同等条件优先考虑新入学 (Bozhou 2023): when a fund cannot cover every case waiting at the last
approval level, the campaign's `aid_priority` decides who comes first — the bulk approval shares
the money out in that order, a single approval may not take money the cases before it need, and
the approval queue lists the cases in that order. Equal cases keep the order they came in."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, case, func, literal, select

from jinqiu.states import CaseState
from jinqiu.workflow.campaigns.models import Campaign, FundSource
from jinqiu.workflow.campaigns.rules import CampaignRules
from jinqiu.workflow.campaigns.schema import Priority
from jinqiu.workflow.cases.aid import ARCHIVE_STATUSES, Applicant, amount_to_keep
from jinqiu.workflow.cases.models import Case, Student, Worker
from jinqiu.workflow.errors import InsufficientFunds
from jinqiu.workflow.money import format_yuan

case_t = Case.__table__  # type: ignore[attr-defined]
student_t = Student.__table__  # type: ignore[attr-defined]
worker_t = Worker.__table__  # type: ignore[attr-defined]
campaign_t = Campaign.__table__  # type: ignore[attr-defined]
fund_t = FundSource.__table__  # type: ignore[attr-defined]

LABELS = {"freshman": "新入学", "archived": "建档"}


def meets(applicant: Applicant, criterion: str) -> bool:
    return applicant.freshman if criterion == "freshman" else applicant.archived


def priority_key(applicant: Applicant, priority: Priority | None) -> tuple[int, ...]:
    """Smaller first: 0 for each criterion met, in the campaign's order."""
    if priority is None:
        return ()
    return tuple(0 if meets(applicant, c) else 1 for c in priority.order)


def priority_labels(applicant: Applicant, priority: Priority | None) -> list[str]:
    """The criteria this case meets, as the queue shows them."""
    if priority is None:
        return []
    return [LABELS[c] for c in priority.order if meets(applicant, c)]


def order_columns(priority: Priority | None, year: int) -> list[Any]:
    """The queue's ORDER BY terms before the case id: the same key in SQL (`year`: the
    campaign's)."""
    if priority is None:
        return []
    columns: list[Any] = []
    for criterion in priority.order:
        met = (
            student_t.c.enrollment_year == year
            if criterion == "freshman"
            else worker_t.c.archive_status.in_(sorted(ARCHIVE_STATUSES))
        )
        columns.append(case((met, literal(0)), else_=literal(1)))
    return columns


_waiting_at_last = (
    select(
        case_t.c.id,
        student_t.c.education_level,
        student_t.c.tier,
        student_t.c.tuition_invoice_fen,
        student_t.c.enrollment_year,
        worker_t.c.archive_status,
        worker_t.c.categories,
    )
    .join(student_t, student_t.c.id == case_t.c.student_id)
    .join(worker_t, worker_t.c.id == case_t.c.worker_id)
)


def applicant_of(row: Any, year: int) -> Applicant:
    """A row with the student's education level, enrollment year and the worker's archive
    status (and, for an amount, tier, invoice and categories)."""
    fields = row._mapping
    return Applicant(
        education_level=fields["education_level"],
        tier=fields.get("tier"),
        tuition_invoice_fen=fields.get("tuition_invoice_fen"),
        archived=fields["archive_status"] in ARCHIVE_STATUSES,
        categories=tuple(fields.get("categories") or ()),
        freshman=fields["enrollment_year"] == year,
        enrollment_year=fields["enrollment_year"],
    )


def check_single_approval(
    conn: Connection,
    rules: CampaignRules,
    case_id: int,
    applicant: Applicant,
    amount_fen: int,
    source: str | None,
) -> None:
    """A single final approval may not take money the cases before it in the campaign's order
    need: the free money (of `source`, or every source) less this amount must still cover what
    each case waiting before it at the last level would get (an amount the approver has yet to
    set: its rule's most). Raises InsufficientFunds naming how many wait and for what."""
    priority = rules.aid_priority
    if priority is None:
        return
    mine = priority_key(applicant, priority)
    rows = conn.execute(
        _waiting_at_last.where(
            case_t.c.campaign_id == rules.id,
            case_t.c.state == CaseState.APPROVAL.value,
            case_t.c.approval_step == len(rules.approval_levels) - 1,
            case_t.c.id != case_id,
        )
    ).all()
    needed, before = 0, 0
    for row in rows:
        other = applicant_of(row, rules.year)
        if priority_key(other, priority) >= mine:
            continue
        before += 1
        needed += amount_to_keep(rules.aid_rules, other)
    if not before:
        return
    free_fen = fund_t.c.budget_fen - fund_t.c.reserved_fen - fund_t.c.paid_fen
    funds = select(func.coalesce(func.sum(free_fen), 0)).where(fund_t.c.campaign_id == rules.id)
    if source is not None:
        funds = funds.where(fund_t.c.source == source)
    free = int(conn.execute(funds).scalar_one())
    if free - amount_fen < needed:
        criteria = "、".join(LABELS[c] for c in priority.order)
        raise InsufficientFunds(
            f"资金不足：同等条件优先考虑（{criteria}）的{before}件案件尚待审批，"
            f"至少需要{format_yuan(needed)}元，剩余可用{format_yuan(free)}元，请先审批优先案件",
            {"waiting_before": before, "needed": format_yuan(needed), "free": format_yuan(free)},
        )
