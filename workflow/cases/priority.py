"""同等条件优先考虑新入学 (Bozhou 2023): when a fund cannot cover every case waiting at the last
approval level, the campaign's `aid_priority` decides who comes first — the bulk approval shares
the money out in that order, a single approval may not take money the cases before it need, and
the approval queue lists the cases in that order. Equal cases keep the order they came in.

One rule for both paths (funds.plan): the cases waiting before keep their amount from the first
own fund that holds it, then the approval takes its own from the fund source it names, or from
the first own fund that still has it — never a sum over every source."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, case, func, literal, select

from jinqiu.states import CaseState
from jinqiu.workflow.campaigns.models import Campaign, FundSource
from jinqiu.workflow.campaigns.rules import CampaignRules
from jinqiu.workflow.campaigns.schema import Priority
from jinqiu.workflow.cases import funds
from jinqiu.workflow.cases.aid import ARCHIVE_STATUSES, Applicant, amount_to_keep
from jinqiu.workflow.cases.effects import Reserve
from jinqiu.workflow.cases.models import Case, Student, Worker
from jinqiu.workflow.donors.intent import DONOR_FUND_PREFIX
from jinqiu.workflow.engine import Outcome
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


@dataclass(frozen=True, slots=True)
class Waiting:
    """A case waiting at the last level, as the priority rule sees it."""

    id: int
    key: tuple[int, ...]
    keeps_fen: int  # its amount, or the most its rule gives when the approver sets it


def waiting_at_last(
    conn: Connection, rules: CampaignRules, exclude: Collection[int] = ()
) -> list[Waiting]:
    """The campaign's cases waiting at the last approval level (but `exclude`), in the
    campaign's priority order, equal cases by case number."""
    rows = conn.execute(
        _waiting_at_last.where(
            case_t.c.campaign_id == rules.id,
            case_t.c.state == CaseState.APPROVAL.value,
            case_t.c.approval_step == len(rules.approval_levels) - 1,
        ).order_by(case_t.c.id)
    ).all()
    waiting = []
    for row in rows:
        if row.id in exclude:
            continue
        other = applicant_of(row, rules.year)
        waiting.append(
            Waiting(
                id=row.id,
                key=priority_key(other, rules.aid_priority),
                keeps_fen=amount_to_keep(rules.aid_rules, other),
            )
        )
    waiting.sort(key=lambda w: w.key)  # stable: by case number within a key
    return waiting


def check_single_approval(
    conn: Connection,
    rules: CampaignRules,
    case_id: int,
    applicant: Applicant,
    amount_fen: int,
    source: str | None,
) -> int | None:
    """A single final approval may not take money the cases before it in the campaign's order
    need. The rule is the bulk plan's (funds.plan): the cases waiting before it each keep their
    amount (a Claim: from the first of the campaign's own funds that holds it), then this one
    takes its amount from `source`, or from the first own fund that still has it. Returns the
    fund it must take from (None: no priority, or none before it), or raises InsufficientFunds
    naming how many wait and for what when only the cases before it stand in the way."""
    priority = rules.aid_priority
    if priority is None:
        return None
    mine = priority_key(applicant, priority)
    before = [w for w in waiting_at_last(conn, rules, {case_id}) if w.key < mine]
    if not before:
        return None
    records: tuple[object, ...] = (Reserve(amount_fen, source),)
    claims = [(rules.id, (funds.Claim(w.keeps_fen),)) for w in before]
    outcome = funds.plan(conn, [*claims, (rules.id, records)]).outcomes[-1]
    if isinstance(outcome, Outcome):
        return int(outcome.changes["fund_source_id"])
    held = held_for(conn, rules, before, records)
    if held is not None:
        raise held
    return None  # short of money with or without them: the reservation says so


def held_for(
    conn: Connection, rules: CampaignRules, before: list[Waiting], records: tuple[object, ...]
) -> InsufficientFunds | None:
    """Why a final approval refused for money was refused, when the money is there but the
    cases `before` it keep it: the count, what they need and what is free (None: it would be
    short without them too, the plain refusal says so)."""
    if not before or rules.aid_priority is None:
        return None
    if not isinstance(funds.plan(conn, [(rules.id, records)]).outcomes[0], Outcome):
        return None
    sources = {r.source for r in records if isinstance(r, Reserve)}
    needed = sum(w.keeps_fen for w in before)
    free = _free(conn, rules.id, next(iter(sources)) if len(sources) == 1 else None)
    criteria = "、".join(LABELS[c] for c in rules.aid_priority.order)
    return InsufficientFunds(
        f"资金不足：同等条件优先考虑（{criteria}）的{len(before)}件案件尚待审批，"
        f"至少需要{format_yuan(needed)}元，剩余可用{format_yuan(free)}元，请先审批优先案件",
        {"waiting_before": len(before), "needed": format_yuan(needed), "free": format_yuan(free)},
    )


def _free(conn: Connection, campaign_id: int, source: str | None) -> int:
    """The free money of `source`, or of the campaign's own funds."""
    free_fen = fund_t.c.budget_fen - fund_t.c.reserved_fen - fund_t.c.paid_fen
    funds_of = select(func.coalesce(func.sum(free_fen), 0)).where(
        fund_t.c.campaign_id == campaign_id
    )
    if source is not None:
        funds_of = funds_of.where(fund_t.c.source == source)
    else:
        funds_of = funds_of.where(~fund_t.c.source.startswith(DONOR_FUND_PREFIX, autoescape=True))
    return int(conn.execute(funds_of).scalar_one())
