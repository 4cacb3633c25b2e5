"""Money moving for cases: reservations at the final approval and payments, written by
conditional UPDATEs on the fund rows so that concurrent approvals never overdraw (a fund's
`budget − reserved − paid` is checked by the statement that takes from it)."""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, select, update

from jinqiu.workflow.campaigns.models import FundSource
from jinqiu.workflow.errors import GuardFailed, InsufficientFunds, Reason
from jinqiu.workflow.money import format_yuan

fund_table = FundSource.__table__  # type: ignore[attr-defined]

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

_funds = (
    select(fund_table.c.id, fund_table.c.source)
    .where(fund_table.c.campaign_id == bindparam("b_campaign_id"))
    .order_by(fund_table.c.position)
)
_funds_of_source = _funds.where(fund_table.c.source == bindparam("b_source"))


def fund_sources(conn: Connection, campaign_id: int, wanted: str | None) -> list[tuple[int, str]]:
    """The campaign's fund sources in order, or only the one asked for."""
    if wanted is None:
        rows = conn.execute(_funds, {"b_campaign_id": campaign_id})
    else:
        rows = conn.execute(_funds_of_source, {"b_campaign_id": campaign_id, "b_source": wanted})
    return [(r.id, r.source) for r in rows]


def reserve(
    conn: Connection, campaign_id: int, amount_fen: int, wanted: str | None
) -> tuple[int, str]:
    """Takes `amount_fen` from the first source (in the campaign's order) that still has it;
    returns (fund id, source), or raises InsufficientFunds."""
    sources = fund_sources(conn, campaign_id, wanted)
    for fund_id, source in sources:
        taken = conn.execute(
            _reserve, {"fund_id": fund_id, "b_campaign_id": campaign_id, "amount": amount_fen}
        )
        if taken.rowcount == 1:
            return fund_id, source
    raise insufficient(amount_fen, [s for _, s in sources])


def insufficient(amount_fen: int, sources: list[str]) -> InsufficientFunds:
    return InsufficientFunds(
        f"资金不足：需 {format_yuan(amount_fen)} 元，可用资金来源余额不够",
        {"amount": format_yuan(amount_fen), "fund_sources": sources},
    )


def pay(conn: Connection, fund_id: int, amount_fen: int) -> None:
    """The reservation becomes a payment."""
    result = conn.execute(_pay, {"fund_id": fund_id, "amount": amount_fen})
    if result.rowcount != 1:  # the check constraint makes this unreachable unless rows were edited
        raise GuardFailed([Reason("reservation_missing", "资金来源中的预留金额不足以支付")])
