"""Funds reconciled (资金对账): for every fund source of a campaign, budget = free + reserved +
paid, and the fund's reserved and paid money equal what its cases hold — the approved amounts
of the cases waiting for payment, and of the cases paid. Called after every operation by the
tests; `GET /api/campaigns/{id}/funds` shows it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, case, func, select

from jinqiu.states import CaseState
from jinqiu.workflow.campaigns.models import FundSource
from jinqiu.workflow.cases.models import Case

fund_t = FundSource.__table__  # type: ignore[attr-defined]
case_t = Case.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class SourceBalance:
    source: str
    budget_fen: int
    free_fen: int
    reserved_fen: int
    paid_fen: int
    cases_reserved_fen: int  # approved amounts of its cases waiting for payment
    cases_paid_fen: int  # approved amounts of its cases paid

    @property
    def problems(self) -> list[str]:
        out = []
        if self.budget_fen != self.free_fen + self.reserved_fen + self.paid_fen:
            out.append("预算 ≠ 可用 + 预留 + 已付")
        if self.free_fen < 0:
            out.append("可用资金为负")
        if self.reserved_fen != self.cases_reserved_fen:
            out.append("预留金额与待发放案件的金额合计不符")
        if self.paid_fen != self.cases_paid_fen:
            out.append("已付金额与已发放案件的金额合计不符")
        return out


def balances(conn: Connection, campaign_id: int) -> list[SourceBalance]:
    """Every source of the campaign in its order, its money as the fund row holds it and as its
    cases add up (one aggregate over the campaign's cases, by fund)."""
    waiting = case_t.c.state == CaseState.DISBURSEMENT.value
    paid = case_t.c.paid_on.is_not(None)
    amount = func.coalesce(case_t.c.approved_amount_fen, 0)
    sums = (
        select(
            case_t.c.fund_source_id.label("fund_id"),
            func.sum(case((waiting, amount), else_=0)).label("reserved"),
            func.sum(case((paid, amount), else_=0)).label("paid"),
        )
        .where(case_t.c.campaign_id == campaign_id, case_t.c.fund_source_id.is_not(None))
        .group_by(case_t.c.fund_source_id)
        .subquery()
    )
    rows = conn.execute(
        select(
            fund_t.c.source,
            fund_t.c.budget_fen,
            fund_t.c.reserved_fen,
            fund_t.c.paid_fen,
            func.coalesce(sums.c.reserved, 0).label("cases_reserved"),
            func.coalesce(sums.c.paid, 0).label("cases_paid"),
        )
        .outerjoin(sums, sums.c.fund_id == fund_t.c.id)
        .where(fund_t.c.campaign_id == campaign_id)
        .order_by(fund_t.c.position)
    )
    return [
        SourceBalance(
            source=r.source,
            budget_fen=int(r.budget_fen),
            free_fen=int(r.budget_fen) - int(r.reserved_fen) - int(r.paid_fen),
            reserved_fen=int(r.reserved_fen),
            paid_fen=int(r.paid_fen),
            cases_reserved_fen=int(r.cases_reserved),
            cases_paid_fen=int(r.cases_paid),
        )
        for r in rows
    ]


def unreconciled(conn: Connection, campaign_id: int) -> dict[str, list[str]]:
    """The sources that do not reconcile, with what is wrong (empty: all is well)."""
    return {b.source: b.problems for b in balances(conn, campaign_id) if b.problems}
