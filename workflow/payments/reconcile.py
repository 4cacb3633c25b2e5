"""Funds reconciled (资金对账): for every fund source of a campaign — its own four and each
donor's fund (`donor:<id>`) — budget = free + reserved + paid, and the fund's reserved and paid
money equal what its cases hold — the approved amounts of the cases waiting for payment, and of
the cases paid. Called after every operation by the tests; `GET /api/campaigns/{id}/funds` and
the payments page show it. `fund_rows` is the funds as their rows hold them, without the
recount of the cases (what the dashboard and an approver's choice of fund read: their cost is
the campaign's few sources, not its cases). `donor_funds` lists the donors with their fund and the students it
actually aided (Weihai 附件2's 人数)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BindParameter, Connection, Select, bindparam, case, func, select

from jinqiu.states import CaseState
from jinqiu.workflow.campaigns.models import FundSource
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.donors.models import Donor
from jinqiu.workflow.money import format_yuan
from jinqiu.workflow.units.models import Unit, in_subtree

fund_t = FundSource.__table__  # type: ignore[attr-defined]
case_t = Case.__table__  # type: ignore[attr-defined]
donor_t = Donor.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
MAX_DONORS = 500  # listed at once (workflow.donors.service refuses more per campaign)


@dataclass(frozen=True, slots=True)
class SourceBalance:
    source: str
    budget_fen: int
    free_fen: int
    reserved_fen: int
    paid_fen: int
    cases_reserved_fen: int  # approved amounts of its cases waiting for payment
    cases_paid_fen: int  # approved amounts of its cases paid
    donor_id: int | None = None  # a donor's fund: whose
    donor_name: str | None = None

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


@dataclass(frozen=True, slots=True)
class FundRow:
    """A fund source as its row holds it: kept by every transition that moves its money."""

    source: str
    budget_fen: int
    free_fen: int
    reserved_fen: int
    paid_fen: int
    donor_id: int | None = None
    donor_name: str | None = None


def _fund_select(campaign_id: int | BindParameter[int], *more: Any) -> Select[Any]:
    """The campaign's fund rows in their order, each with its donor (if a donor's fund)."""
    return (
        select(
            fund_t.c.source,
            fund_t.c.budget_fen,
            fund_t.c.reserved_fen,
            fund_t.c.paid_fen,
            donor_t.c.id.label("donor_id"),
            donor_t.c.name.label("donor_name"),
            *more,
        )
        .select_from(fund_t)
        .outerjoin(donor_t, donor_t.c.fund_source_id == fund_t.c.id)
        .where(fund_t.c.campaign_id == campaign_id)
        .order_by(fund_t.c.position)
    )


def _money(r: Mapping[Any, Any]) -> dict[str, Any]:
    """A fund row's money as the row holds it."""
    return {
        "source": r["source"],
        "budget_fen": int(r["budget_fen"]),
        "free_fen": int(r["budget_fen"]) - int(r["reserved_fen"]) - int(r["paid_fen"]),
        "reserved_fen": int(r["reserved_fen"]),
        "paid_fen": int(r["paid_fen"]),
        "donor_id": r["donor_id"],
        "donor_name": r["donor_name"],
    }


# Built once (every dashboard reads it), the campaign bound per call.
FUND_ROWS = _fund_select(bindparam("campaign_id"))
_FUND_COLUMNS = tuple(str(column.key) for column in FUND_ROWS.selected_columns)


def fund_rows(conn: Connection, campaign_id: int) -> list[FundRow]:
    """Every source of the campaign in its order, as its row holds it (no case is read)."""
    rows = conn.execute(FUND_ROWS, {"campaign_id": campaign_id})
    return [FundRow(**_money(r._mapping)) for r in rows]


def fund_row(values: Sequence[Any]) -> FundRow:
    """A row of FUND_ROWS as the driver gives it (a tuple in the select's order)."""
    return FundRow(**_money(dict(zip(_FUND_COLUMNS, values, strict=True))))


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
    query = _fund_select(
        campaign_id,
        func.coalesce(sums.c.reserved, 0).label("cases_reserved"),
        func.coalesce(sums.c.paid, 0).label("cases_paid"),
    ).outerjoin(sums, sums.c.fund_id == fund_t.c.id)
    return [
        SourceBalance(
            **_money(r._mapping),
            cases_reserved_fen=int(r.cases_reserved),
            cases_paid_fen=int(r.cases_paid),
        )
        for r in conn.execute(query)
    ]


def unreconciled(conn: Connection, campaign_id: int) -> dict[str, list[str]]:
    """The sources that do not reconcile, with what is wrong (empty: all is well)."""
    return {b.source: b.problems for b in balances(conn, campaign_id) if b.problems}


def donor_funds(
    conn: Connection, campaign_id: int, *, path: str | None = None, donor_id: int | None = None
) -> list[dict[str, Any]]:
    """The campaign's donors (those brought in by the units of the subtree at `path`), each
    with its fund's money and `aided`: the students it actually aided, its paid cases."""
    paid = case_t.c.paid_on.is_not(None)
    aided = (
        select(
            case_t.c.fund_source_id.label("fund_id"),
            func.sum(case((paid, 1), else_=0)).label("aided"),
        )
        .where(case_t.c.campaign_id == campaign_id, case_t.c.fund_source_id.is_not(None))
        .group_by(case_t.c.fund_source_id)
        .subquery()
    )
    query = (
        select(
            donor_t,
            unit_t.c.code.label("unit_code"),
            fund_t.c.source.label("fund_source"),
            fund_t.c.budget_fen,
            fund_t.c.reserved_fen,
            fund_t.c.paid_fen,
            func.coalesce(aided.c.aided, 0).label("aided"),
        )
        .join(unit_t, unit_t.c.id == donor_t.c.unit_id)
        .join(fund_t, fund_t.c.id == donor_t.c.fund_source_id)
        .outerjoin(aided, aided.c.fund_id == fund_t.c.id)
        .where(donor_t.c.campaign_id == campaign_id)
        .order_by(donor_t.c.id)
        .limit(MAX_DONORS)
    )
    if path is not None:
        query = query.where(in_subtree(unit_t.c.path, path))
    if donor_id is not None:
        query = query.where(donor_t.c.id == donor_id)
    return [
        {
            "id": r.id,
            "name": r.name,
            "contact": r.contact,
            "unit": r.unit_code,
            "amount": format_yuan(int(r.amount_fen)),
            "intent": {k: v for k, v in (r.intent or {}).items() if k != "unit_path"},
            "summary": r.summary,
            "fund_source": r.fund_source,
            "budget": format_yuan(int(r.budget_fen)),
            "free": format_yuan(int(r.budget_fen) - int(r.reserved_fen) - int(r.paid_fen)),
            "reserved": format_yuan(int(r.reserved_fen)),
            "paid": format_yuan(int(r.paid_fen)),
            "aided": int(r.aided),
        }
        for r in conn.execute(query)
    ]
