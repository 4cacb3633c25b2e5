"""What a transition changes besides the state, by name (the lifecycle table names them).

Effects run after every guard passed, inside the transition's transaction; they change the
case row (via `changes`), note what the audit entry should say (`audit`) and, for money,
update fund rows with conditional UPDATEs so concurrent approvals never overdraw.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from jinqiu.states import TRANSITIONS
from jinqiu.workflow.calendar import WorkingCalendar
from jinqiu.workflow.campaigns.models import FundSource
from jinqiu.workflow.cases.aid import decide_aid
from jinqiu.workflow.cases.facts import GuardContext
from jinqiu.workflow.errors import GuardFailed, InsufficientFunds, Reason
from jinqiu.workflow.money import format_yuan

fund_table = FundSource.__table__  # type: ignore[attr-defined]


@dataclass
class EffectContext:
    conn: Connection
    facts: GuardContext
    opinion: str | None
    data: dict[str, Any]
    changes: dict[str, Any] = field(default_factory=dict)
    audit: dict[str, Any] = field(default_factory=dict)


@lru_cache(maxsize=4096)
def publicity_ends(calendar: WorkingCalendar, start: dt.date, working_days: int) -> dt.date:
    """Memoised: the calendar is immutable and every case verified on a day ends on the same day
    (walking the official calendar day by day is the costly part of a `verify`)."""
    return calendar.add_working_days(start, working_days)


def start_publicity(ctx: EffectContext) -> None:
    """公示: the period ends after the campaign's number of working days (default 5)."""
    campaign, today = ctx.facts.campaign, ctx.facts.today
    ends = publicity_ends(campaign.calendar, today, campaign.publicity_working_days)
    ctx.changes.update(publicity_started_on=today, publicity_ends_on=ends, objection_open=False)
    ctx.audit["publicity_ends_on"] = ends.isoformat()


def open_objection(ctx: EffectContext) -> None:
    ctx.changes["objection_open"] = True


def close_objection(ctx: EffectContext) -> None:
    ctx.changes["objection_open"] = False


def _wait_at_next_level(ctx: EffectContext, approved: int | None) -> None:
    """Moves the case on to the next campaign level that exists on its unit path (past the
    end after the last one) and writes the levels skipped on the way into the audit entry."""
    case, levels = ctx.facts.case, ctx.facts.campaign.approval_levels
    start = case.approval_step if approved is None else approved + 1
    following = next((i for i in case.approval_chain if i >= start), len(levels))
    ctx.changes["approval_step"] = following
    skipped = [levels[i] for i in range(case.approval_step, following) if i != approved]
    if skipped:
        ctx.audit["skipped_levels"] = skipped


def enter_approval(ctx: EffectContext) -> None:
    """Publicity over: the case waits at the first of the campaign's levels on its path."""
    _wait_at_next_level(ctx, None)


def advance_approval_level(ctx: EffectContext) -> None:
    step = ctx.facts.case.pending_step()
    if step is None:  # refused by role before the effects run; kept for a clear failure
        raise GuardFailed(
            [Reason("no_approval_level", "该案件所在单位的上级中没有本活动的审批层级")]
        )
    ctx.audit["approval_level"] = ctx.facts.campaign.approval_levels[step]
    _wait_at_next_level(ctx, step)


_reserve = (
    update(fund_table)
    .where(
        fund_table.c.id == bindparam("fund_id"),
        fund_table.c.campaign_id == bindparam("b_campaign_id"),
        fund_table.c.budget_fen - fund_table.c.reserved_fen - fund_table.c.paid_fen
        >= bindparam("amount"),
    )
    .values(reserved_fen=fund_table.c.reserved_fen + bindparam("amount"))
)


def reserve_aid(ctx: EffectContext) -> None:
    """The final approval reserves the amount from a fund source; never overdraws."""
    facts = ctx.facts
    decision = decide_aid(
        facts.campaign.aid_rules,
        facts.student.education_level,
        facts.student.tier,
        facts.student.tuition_invoice_fen,
    )
    if isinstance(decision, Reason):
        raise GuardFailed([decision])
    amount = decision.amount_fen
    sources = conn_fund_ids(ctx.conn, facts.campaign.id, ctx.data.get("fund_source"))
    for fund_id, source in sources:
        result = ctx.conn.execute(
            _reserve, {"fund_id": fund_id, "b_campaign_id": facts.campaign.id, "amount": amount}
        )
        if result.rowcount == 1:
            ctx.changes.update(approved_amount_fen=amount, fund_source_id=fund_id)
            ctx.audit.update(amount=format_yuan(amount), fund_source=source)
            return
    raise InsufficientFunds(
        f"资金不足：需 {format_yuan(amount)} 元，可用资金来源余额不够",
        {"amount": format_yuan(amount), "fund_sources": [s for _, s in sources]},
    )


_funds = (
    select(fund_table.c.id, fund_table.c.source)
    .where(fund_table.c.campaign_id == bindparam("b_campaign_id"))
    .order_by(fund_table.c.position)
)
_funds_of_source = _funds.where(fund_table.c.source == bindparam("b_source"))


def conn_fund_ids(conn: Connection, campaign_id: int, wanted: object) -> list[tuple[int, str]]:
    """The campaign's fund sources in order, or only the one asked for."""
    if wanted is None:
        rows = conn.execute(_funds, {"b_campaign_id": campaign_id})
    else:
        rows = conn.execute(
            _funds_of_source, {"b_campaign_id": campaign_id, "b_source": str(wanted)}
        )
    return [(r.id, r.source) for r in rows]


_pay = (
    update(fund_table)
    .where(
        fund_table.c.id == bindparam("fund_id"), fund_table.c.reserved_fen >= bindparam("amount")
    )
    .values(
        reserved_fen=fund_table.c.reserved_fen - bindparam("amount"),
        paid_fen=fund_table.c.paid_fen + bindparam("amount"),
    )
)


def record_payment(ctx: EffectContext) -> None:
    """发放 by bank card: the reservation becomes a payment."""
    case = ctx.facts.case
    if case.fund_source_id is None or case.approved_amount_fen is None:
        raise GuardFailed([Reason("nothing_reserved", "该案件没有预留的助学金")])
    result = ctx.conn.execute(
        _pay, {"fund_id": case.fund_source_id, "amount": case.approved_amount_fen}
    )
    if result.rowcount != 1:  # the check constraint makes this unreachable unless rows were edited
        raise GuardFailed([Reason("reservation_missing", "资金来源中的预留金额不足以支付")])
    ctx.changes["paid_on"] = ctx.facts.today
    ctx.audit["amount"] = format_yuan(case.approved_amount_fen)
    if "payment_reference" in ctx.data:
        ctx.audit["payment_reference"] = str(ctx.data["payment_reference"])


def record_payment_failure(ctx: EffectContext) -> None:
    ctx.changes["payment_failures"] = ctx.facts.case.payment_failures + 1


def keep_return_reason(ctx: EffectContext) -> None:
    """补正: back to survey with the reason kept; the approvals start over when resubmitted."""
    ctx.changes.update(
        return_reason=ctx.opinion,
        approval_step=0,
        objection_open=False,
        publicity_started_on=None,
        publicity_ends_on=None,
    )


Effect = Callable[[EffectContext], None]

EFFECTS: dict[str, Effect] = {
    "start_publicity": start_publicity,
    "open_objection": open_objection,
    "close_objection": close_objection,
    "enter_approval": enter_approval,
    "advance_approval_level": advance_approval_level,
    "reserve_aid": reserve_aid,
    "record_payment": record_payment,
    "record_payment_failure": record_payment_failure,
    "keep_return_reason": keep_return_reason,
}

_missing = {e for t in TRANSITIONS for e in t.effects} - EFFECTS.keys()
if _missing:
    raise ImportError(f"effects named in states/ but not implemented: {sorted(_missing)}")
