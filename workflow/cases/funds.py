"""Money moving for cases: reservations at the final approval and payments, written by
conditional UPDATEs on the fund rows so that concurrent approvals never overdraw (a fund's
`budget − reserved − paid` is checked by the statement that takes from it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, or_, select, update

from jinqiu.workflow.campaigns.models import FundSource
from jinqiu.workflow.cases.effects import Pay, Reserve
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.donors.intent import DONOR_FUND_PREFIX, is_donor_fund
from jinqiu.workflow.driver import any_of
from jinqiu.workflow.engine import NOTHING, Outcome, Plan
from jinqiu.workflow.errors import DomainError, GuardFailed, InsufficientFunds, Reason
from jinqiu.workflow.money import format_yuan

fund_table = FundSource.__table__  # type: ignore[attr-defined]
case_t = Case.__table__  # type: ignore[attr-defined]

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
# Without a source asked for, the campaign's own sources in order: a donor's fund pays only
# when the approver names it (its intent is checked then).
_own_funds = _funds.where(~fund_table.c.source.startswith(DONOR_FUND_PREFIX, autoescape=True))


def fund_sources(conn: Connection, campaign_id: int, wanted: str | None) -> list[tuple[int, str]]:
    """The campaign's own fund sources in order, or only the one asked for (a donor's too)."""
    if wanted is None:
        rows = conn.execute(_own_funds, {"b_campaign_id": campaign_id})
    else:
        rows = conn.execute(_funds_of_source, {"b_campaign_id": campaign_id, "b_source": wanted})
    return [(r.id, r.source) for r in rows]


def reserve(
    conn: Connection,
    campaign_id: int,
    amount_fen: int,
    wanted: str | None,
    fund_id: int | None = None,
) -> tuple[int, str]:
    """Takes `amount_fen` from the first source (in the campaign's order) that still has it —
    or from `fund_id`, one of them, when the priority check chose it (cases/priority.py);
    returns (fund id, source), or raises InsufficientFunds."""
    sources = fund_sources(conn, campaign_id, wanted)
    chosen = [f for f in sources if fund_id is None or f[0] == fund_id]
    for candidate, source in chosen:
        taken = conn.execute(
            _reserve, {"fund_id": candidate, "b_campaign_id": campaign_id, "amount": amount_fen}
        )
        if taken.rowcount == 1:
            return candidate, source
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


_release = (
    update(fund_table)
    .where(
        fund_table.c.id == bindparam("fund_id"), fund_table.c.reserved_fen >= bindparam("amount")
    )
    .values(reserved_fen=fund_table.c.reserved_fen - bindparam("amount"))
)


def release(conn: Connection, fund_id: int, amount_fen: int) -> None:
    """A cancelled case's reservation goes back to the fund's free money."""
    result = conn.execute(_release, {"fund_id": fund_id, "amount": amount_fen})
    if result.rowcount != 1:  # as for pay: only if rows were edited by hand
        raise GuardFailed([Reason("reservation_missing", "资金来源中的预留金额不足以释放")])


# -- many cases at once (bulk) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claim:
    """What a case waiting before others in the campaign's priority order keeps (planned, never
    written): its amount from the first of the campaign's own funds that holds it — as its own
    approval would take it —, or, when none does, all the first fund with money holds (its
    approver may still set less). Never refused."""

    amount_fen: int


def lock_of_cases(conn: Connection, case_ids: Sequence[int]) -> None:
    """PostgreSQL: holds the fund rows of the cases' campaigns, by id, until the commit."""
    campaigns = set(
        conn.execute(
            select(case_t.c.campaign_id).distinct().where(any_of(case_t.c.id, case_ids))
        ).scalars()
    )
    conn.execute(
        select(fund_table.c.id)
        .where(fund_table.c.campaign_id.in_(sorted(campaigns)))
        .order_by(fund_table.c.id)
        .with_for_update()
    ).all()


_fund_rows = select(
    fund_table.c.id,
    fund_table.c.campaign_id,
    fund_table.c.position,
    fund_table.c.source,
    (fund_table.c.budget_fen - fund_table.c.reserved_fen - fund_table.c.paid_fen).label("free"),
    fund_table.c.reserved_fen,
).order_by(fund_table.c.id)  # the lock order

_move_totals = (
    update(fund_table)
    .where(
        fund_table.c.id == bindparam("fund_id"),
        fund_table.c.budget_fen - fund_table.c.reserved_fen - fund_table.c.paid_fen
        >= bindparam("reserving"),
        fund_table.c.reserved_fen >= bindparam("paying"),
    )
    .values(
        reserved_fen=fund_table.c.reserved_fen + bindparam("reserving") - bindparam("paying"),
        paid_fen=fund_table.c.paid_fen + bindparam("paying"),
    )
)


def plan(conn: Connection, items: Sequence[tuple[int, tuple[object, ...]]]) -> Plan:
    """The money of many transitions (campaign id, side records) decided together: the funds
    concerned are read once — on PostgreSQL locked until the commit — and their free money shared
    out in item order, each reservation taking from the first source that still has it, exactly
    as that many single approvals one after the other would. The totals of the winners are
    written by `Plan.write`, one conditional UPDATE per fund (a belt: it cannot fail while the
    rows are held)."""
    campaigns = sorted({c for c, records in items if any(isinstance(r, Reserve) for r in records)})
    paying = sorted({r.fund_id for _, records in items for r in records if isinstance(r, Pay)})
    if not campaigns and not paying:
        return Plan([NOTHING] * len(items))
    query = _fund_rows.where(
        or_(fund_table.c.campaign_id.in_(campaigns), fund_table.c.id.in_(paying))
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    rows = conn.execute(query).all()
    free = {r.id: int(r.free) for r in rows}
    reserved = {r.id: int(r.reserved_fen) for r in rows}
    in_order: dict[int, list[Any]] = {}
    for r in sorted(rows, key=lambda r: (r.campaign_id, r.position)):
        in_order.setdefault(r.campaign_id, []).append(r)

    outcomes: list[Outcome | DomainError] = []
    moves: list[list[tuple[int, int, int]]] = []  # per item: (fund, reserve, pay)
    for campaign_id, records in items:
        changes: dict[str, Any] = {}
        audit: dict[str, Any] = {}
        moved: list[tuple[int, int, int]] = []
        refusal: DomainError | None = None
        for record in records:
            if isinstance(record, Claim):
                own = [r for r in in_order.get(campaign_id, []) if not is_donor_fund(r.source)]
                fund = next((r for r in own if free[r.id] >= record.amount_fen), None)
                fund = fund or next((r for r in own if free[r.id] > 0), None)
                if fund is not None:
                    kept = min(record.amount_fen, free[fund.id])
                    free[fund.id] -= kept
                    moved.append((fund.id, kept, 0))
            elif isinstance(record, Reserve):
                sources = [
                    r
                    for r in in_order.get(campaign_id, [])
                    if r.source == record.source
                    or (record.source is None and not is_donor_fund(r.source))
                ]
                fund = next((r for r in sources if free[r.id] >= record.amount_fen), None)
                if fund is None:
                    refusal = insufficient(record.amount_fen, [r.source for r in sources])
                    break
                free[fund.id] -= record.amount_fen
                moved.append((fund.id, record.amount_fen, 0))
                changes.update(approved_amount_fen=record.amount_fen, fund_source_id=fund.id)
                audit.update(amount=format_yuan(record.amount_fen), fund_source=fund.source)
            elif isinstance(record, Pay):
                if reserved.get(record.fund_id, 0) < record.amount_fen:
                    refusal = GuardFailed(
                        [Reason("reservation_missing", "资金来源中的预留金额不足以支付")]
                    )
                    break
                reserved[record.fund_id] -= record.amount_fen
                moved.append((record.fund_id, 0, record.amount_fen))
            else:
                raise TypeError(f"no writer for {record!r}")
        if refusal is not None:  # give back what this item took before it was refused
            for fund_id, reserve_fen, pay_fen in moved:
                free[fund_id] += reserve_fen
                reserved[fund_id] += pay_fen
            outcomes.append(refusal)
            moves.append([])
        else:
            outcomes.append(Outcome(changes, audit))
            moves.append(moved)

    def write(conn: Connection, winners: list[int]) -> None:
        totals: dict[int, list[int]] = {}
        for k in winners:
            for fund_id, reserve_fen, pay_fen in moves[k]:
                total = totals.setdefault(fund_id, [0, 0])
                total[0] += reserve_fen
                total[1] += pay_fen
        for fund_id in sorted(totals):
            reserve_fen, pay_fen = totals[fund_id]
            done = conn.execute(
                _move_totals, {"fund_id": fund_id, "reserving": reserve_fen, "paying": pay_fen}
            )
            if done.rowcount != 1:  # only if the rows were not held (they are)
                raise RuntimeError(f"fund {fund_id} moved under a bulk transition")

    return Plan(outcomes, write)
