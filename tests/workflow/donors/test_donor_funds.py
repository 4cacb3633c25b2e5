"""Donor funds (社会资源) on both databases: a donor's money pays only the cases its intent
covers — the final approval that names its fund lists every reason a case falls outside it —,
no approval without the fund named takes from it, and the funds reconcile per source and per
donor after every step. Bozhou: "社会各界捐款资金可按照捐赠方意愿确定资金使用对象和标准"."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Engine, select

from jinqiu.states import CaseEvent, CaseState
from jinqiu.workflow.campaigns.models import FundSource
from jinqiu.workflow.cases.bulk import BulkItem, apply_bulk
from jinqiu.workflow.cases.engine import apply_event
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.donors.service import DonorIn, create_donor
from jinqiu.workflow.errors import GuardFailed, InsufficientFunds
from jinqiu.workflow.payments.reconcile import balances, donor_funds, unreconciled
from tests.factories import actor, actor_of, case_in, case_row, weihai

fund_t = FundSource.__table__  # type: ignore[attr-defined]
APPROVAL_DAY = dt.datetime(2024, 8, 26, 10)  # in Weihai's award phase (8/23–8/29)


def add_donor(engine: Engine, clock: ManualClock, campaign: int, **fields: Any) -> int:
    body = DonorIn.model_validate(
        {
            "name": "威海某爱心企业",
            "contact": "李经理 0631-5200000",
            "amount": "10000",
            "summary": "定向资助环翠区考入大学的农民工子女",
            **fields,
        }
    )
    with transaction(engine) as conn:
        return create_donor(conn, campaign, body, actor=actor(conn, "WH", "manager"), clock=clock)


def awaiting_the_city(
    engine: Engine, clock: ManualClock, campaign: int, unit: str, **changes: Any
) -> int:
    """A case whose grassroots and district approvals are done: the city's is the last."""
    return case_in(engine, clock, campaign, unit, CaseState.APPROVAL, approved=2, **changes)


def approve(engine: Engine, clock: ManualClock, case_id: int, **data: Any) -> None:
    with transaction(engine) as conn:
        apply_event(
            conn,
            case_id=case_id,
            event=CaseEvent.APPROVE,
            expected_version=case_row(engine, case_id).version,
            actor=actor(conn, "WH", "approver"),
            clock=clock,
            opinion="同意资助",
            data=data,
        )


def fund_of(engine: Engine, source: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(fund_t).where(fund_t.c.source == source)).one()


def reconciled(engine: Engine, campaign: int) -> None:
    with engine.connect() as conn:
        assert unreconciled(conn, campaign) == {}


MIGRANT_FRESHMAN = {
    "worker_changes": {"categories": ["migrant_worker"]},
    "student_changes": {
        "education_level": "undergraduate",
        "tier": "first",
        "enrollment_year": 2024,
    },
}
OUTSIDE = {
    "worker_changes": {"categories": []},
    "student_changes": {"education_level": "college", "tier": None, "enrollment_year": 2023},
}
INTENT = {
    "education_levels": ["undergraduate"],
    "categories": ["migrant_worker"],
    "unit": "WH-HC",
    "freshman_only": True,
    "max_per_student": "3000",
    "statement": "资助环翠区当年考入本科的困难农民工子女，每人不超过3000元",
}


def test_a_donor_fund_pays_a_matching_case_and_names_every_reason_for_another(
    db: Engine, clock: ManualClock
) -> None:
    _tree, campaign = weihai(db, clock)
    donor = add_donor(db, clock, campaign, intent=INTENT)
    fund = f"donor:{donor}"
    matching = awaiting_the_city(db, clock, campaign, "WH-HC-001", **MIGRANT_FRESHMAN)
    outside = awaiting_the_city(db, clock, campaign, "WH-WD-001", **OUTSIDE)
    reconciled(db, campaign)
    clock.set(APPROVAL_DAY)

    with pytest.raises(GuardFailed) as refused:
        approve(db, clock, outside, fund_source=fund)
    reasons = {r["code"]: r["message"] for r in refused.value.details["reasons"]}
    assert reasons == {
        "donor_education_level": "捐赠方「威海某爱心企业」只资助本科学生",
        "donor_category": "捐赠方「威海某爱心企业」只资助困难农民工家庭子女",
        "donor_unit": "捐赠方「威海某爱心企业」只资助环翠区总工会所属的职工家庭",
        "donor_freshman_only": "捐赠方「威海某爱心企业」只资助2024年当年考入的新生",
    }
    row = case_row(db, outside)
    assert (row.state, row.approved_amount_fen, row.fund_source_id) == ("approval", None, None)
    assert fund_of(db, fund).reserved_fen == 0  # refused: nothing reserved, nothing written

    approve(db, clock, matching, fund_source=fund)
    row = case_row(db, matching)
    assert row.state == "disbursement"
    assert row.fund_source_id == fund_of(db, fund).id
    assert fund_of(db, fund).reserved_fen == row.approved_amount_fen == 300_000
    reconciled(db, campaign)

    # The outside case is still approved from the campaign's own funds, the donor's untouched.
    approve(db, clock, outside)
    assert fund_of(db, case_source(db, outside)).source == "government"
    assert fund_of(db, fund).reserved_fen == 300_000

    clock.set(dt.datetime(2024, 8, 27, 10))
    with transaction(db) as conn:
        apply_event(
            conn,
            case_id=matching,
            event=CaseEvent.PAY,
            expected_version=case_row(db, matching).version,
            actor=actor(conn, "WH", "finance"),
            clock=clock,
        )
    reconciled(db, campaign)
    with db.connect() as conn:
        (listed,) = donor_funds(conn, campaign)
        by_source = {b.source: b for b in balances(conn, campaign)}
    assert (listed["paid"], listed["free"], listed["aided"]) == ("3000.00", "7000.00", 1)
    assert by_source[fund].donor_name == "威海某爱心企业"
    assert by_source[fund].paid_fen + by_source[fund].free_fen == by_source[fund].budget_fen


def case_source(engine: Engine, case_id: int) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(
                select(fund_t.c.source).where(
                    fund_t.c.id == case_row(engine, case_id).fund_source_id
                )
            ).scalar_one()
        )


def test_the_donors_cap_per_student_refuses_a_larger_amount(db: Engine, clock: ManualClock) -> None:
    _tree, campaign = weihai(db, clock)
    donor = add_donor(db, clock, campaign, intent={"max_per_student": "2000"})
    case_id = awaiting_the_city(db, clock, campaign, "WH-HC-001", **MIGRANT_FRESHMAN)
    clock.set(APPROVAL_DAY)
    with pytest.raises(GuardFailed) as refused:
        approve(db, clock, case_id, fund_source=f"donor:{donor}")
    assert refused.value.details["reasons"] == [
        {
            "code": "donor_max_per_student",
            "message": "助学金 3000.00 元超过捐赠方「威海某爱心企业」每人上限 2000.00 元",
        }
    ]
    with pytest.raises(GuardFailed) as unknown:
        approve(db, clock, case_id, fund_source="donor:999999")
    assert [r["code"] for r in unknown.value.details["reasons"]] == ["donor_fund_unknown"]
    reconciled(db, campaign)


def test_without_the_fund_named_no_approval_takes_a_donors_money(
    db: Engine, clock: ManualClock
) -> None:
    """The campaign's own money is spent: a single approval and a bulk one are refused for want
    of funds although a donor's fund still holds money; naming it, the bulk pays the one case
    its intent covers and refuses the other with the reasons."""
    _tree, campaign = weihai(db, clock, funds=[{"source": "government", "budget": "0"}])
    donor = add_donor(db, clock, campaign, intent=INTENT)
    matching = awaiting_the_city(db, clock, campaign, "WH-HC-001", **MIGRANT_FRESHMAN)
    outside = awaiting_the_city(db, clock, campaign, "WH-HC-002", **OUTSIDE)
    clock.set(APPROVAL_DAY)
    with pytest.raises(InsufficientFunds):
        approve(db, clock, matching)
    items = [BulkItem(c, case_row(db, c).version) for c in (matching, outside)]
    city = actor_of(db, "WH", "approver")
    with transaction(db) as conn:
        results = apply_bulk(
            conn, items=items, event=CaseEvent.APPROVE, actor=city, clock=clock, opinion="同意"
        )
    assert [(r.ok, type(r.error)) for r in results] == [
        (False, InsufficientFunds),
        (False, InsufficientFunds),
    ]
    assert fund_of(db, f"donor:{donor}").reserved_fen == 0
    with transaction(db) as conn:
        results = apply_bulk(
            conn,
            items=items,
            event=CaseEvent.APPROVE,
            actor=city,
            clock=clock,
            opinion="同意",
            data={"fund_source": f"donor:{donor}"},
        )
    assert results[0].ok and results[0].state == CaseState.DISBURSEMENT
    assert not results[1].ok and isinstance(results[1].error, GuardFailed)
    assert [r["code"] for r in results[1].error.details["reasons"]] == [
        "donor_education_level",
        "donor_category",
        "donor_freshman_only",
    ]  # WH-HC-002 is in 环翠区: the unit matches
    assert fund_of(db, f"donor:{donor}").reserved_fen == 300_000
    reconciled(db, campaign)
