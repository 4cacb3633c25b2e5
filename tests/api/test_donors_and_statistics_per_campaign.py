"""Donors, 自筹 and a campaign's own statistics tables through the API and the pages (both
databases): a donor recorded and shown among the funds and on the dashboard, reconciled; its
fund refused for a case outside its intent with the reasons; a unit's 自筹 in its figures; a
Bozhou 2023 campaign showing and exporting only its own tables (附件7–9)."""

from __future__ import annotations

import io
import json
from typing import Any

from openpyxl import load_workbook

from jinqiu.states import CaseState
from jinqiu.workflow.statistics.tables import BY_KEY
from tests.api.conftest import World
from tests.factories import ROOT, case_in, case_row
from tests.security.test_bounds import sign_in_page
from tests.workflow.donors.test_donor_funds import APPROVAL_DAY, INTENT, MIGRANT_FRESHMAN, OUTSIDE

BOZHOU = ROOT / "examples" / "campaigns" / "bozhou-2023.json"
BOZHOU_TABLES = ["anhui_2023_demand", "anhui_2023_aid", "anhui_2023_employment"]
DONOR = {
    "name": "威海某爱心企业",
    "contact": "李经理 0631-5200000",
    "amount": "10000",
    "intent": INTENT,
    "summary": "定向资助环翠区考入大学的农民工子女",
}


def post_donor(world: World, body: dict[str, Any], who: str = "manager.wh") -> Any:
    return world.client.post(
        f"/api/campaigns/{world.campaign}/donors", json=body, headers=world.as_(who)
    )


def test_a_donor_is_recorded_shown_among_the_funds_and_pays_only_what_it_meant(
    world: World,
) -> None:
    assert post_donor(world, DONOR, "clerk.wh").status_code == 403
    for wrong, field in (
        ({**DONOR, "amount": 10000.5}, "amount"),
        ({**DONOR, "amount": "0"}, "amount"),
        ({**DONOR, "intent": {"education_levels": ["phd"]}}, "intent.education_levels.0"),
        ({**DONOR, "intent": {"unit": "NOWHERE"}}, "intent.unit"),
        ({**DONOR, "name": "x" * 201}, "name"),
    ):
        refused = post_donor(world, wrong)
        assert refused.status_code == 422, refused.text
        assert refused.json()["details"][0]["field"] == field, refused.json()
    made = post_donor(world, DONOR)
    assert made.status_code == 201, made.text
    donor = made.json()
    assert donor["fund_source"] == f"donor:{donor['id']}"
    assert (donor["budget"], donor["free"], donor["aided"]) == ("10000.00", "10000.00", 0)
    assert donor["intent"]["unit_name"] == "环翠区总工会" and "unit_path" not in donor["intent"]
    listed = world.client.get(
        f"/api/campaigns/{world.campaign}/donors", headers=world.as_("clerk.wh-hc")
    )
    assert [d["id"] for d in listed.json()] == []  # brought in by the city: not WH-HC's
    funds = world.client.get(
        f"/api/campaigns/{world.campaign}/funds", headers=world.as_("finance.wh")
    ).json()
    assert funds["reconciled"] is True
    (row,) = [s for s in funds["sources"] if s["donor"]]
    assert row == {
        "source": donor["fund_source"],
        "donor": {"id": donor["id"], "name": "威海某爱心企业"},
        "budget": "10000.00",
        "free": "10000.00",
        "reserved": "0.00",
        "paid": "0.00",
    }

    outside = case_in(
        world.engine, world.clock, world.campaign, "WH-WD-001", CaseState.APPROVAL, approved=2,
        **OUTSIDE,
    )  # fmt: skip
    matching = case_in(
        world.engine, world.clock, world.campaign, "WH-HC-001", CaseState.APPROVAL, approved=2,
        **MIGRANT_FRESHMAN,
    )  # fmt: skip
    world.clock.set(APPROVAL_DAY)
    for case_id, status in ((outside, 422), (matching, 200)):
        answer = world.client.post(
            f"/api/cases/{case_id}/events",
            json={
                "event": "approve",
                "version": case_row(world.engine, case_id).version,
                "opinion": "同意",
                "data": {"fund_source": donor["fund_source"]},
            },
            headers=world.as_("approver.wh"),
        )
        assert answer.status_code == status, answer.text
    refusal = answer_of(world, outside, donor["fund_source"])
    assert refusal["code"] == "guard_failed"
    assert [r["code"] for r in refusal["details"]["reasons"]] == [
        "donor_education_level",
        "donor_category",
        "donor_unit",
        "donor_freshman_only",
    ]
    assert "只资助本科学生" in refusal["message"]

    board = world.client.get(
        "/api/dashboard", params={"campaign": world.campaign}, headers=world.as_("manager.wh")
    ).json()
    (donor_row,) = [s for s in board["funds"]["sources"] if s["donor"]]
    assert donor_row["reserved"] == "3000.00"
    # The dashboard shows the fund rows (kept by every transition); the recount of the cases
    # behind them is the reconciliation's, which it links to.
    assert "reconciled" not in donor_row
    assert board["funds"]["reconciliation"] == f"/api/campaigns/{world.campaign}/funds"
    funds = world.client.get(
        board["funds"]["reconciliation"], headers=world.as_("finance.wh")
    ).json()
    assert funds["reconciled"] is True
    assert [t["key"] for t in board["statistics"]] == ["weihai_2024_a1", "weihai_2024_a2"]
    sign_in_page(world, "manager.wh")
    page = world.client.get(f"/dashboard?campaign={world.campaign}")
    assert page.status_code == 200
    assert "捐赠方：威海某爱心企业" in page.text and 'href="/payments' in page.text


def answer_of(world: World, case_id: int, fund: str) -> dict[str, Any]:
    answer = world.client.post(
        f"/api/cases/{case_id}/events",
        json={
            "event": "approve",
            "version": case_row(world.engine, case_id).version,
            "opinion": "同意",
            "data": {"fund_source": fund},
        },
        headers=world.as_("approver.wh"),
    )
    assert answer.status_code == 422, answer.text
    return dict(answer.json())


def test_a_units_own_funds_count_in_its_figures(world: World) -> None:
    made = world.client.post(
        f"/api/campaigns/{world.campaign}/unit-funds",
        json={"unit": "WH-HC-001", "source": "union", "amount": "800", "note": "基层工会自筹"},
        headers=world.as_("manager.wh-hc"),
    )
    assert made.status_code == 201, made.text
    assert (made.json()["source_label"], made.json()["amount"]) == ("各级工会投入", "800.00")
    bad = world.client.post(
        f"/api/campaigns/{world.campaign}/unit-funds",
        json={"unit": "WH-HC-001", "source": "lottery", "amount": "800"},
        headers=world.as_("manager.wh-hc"),
    )
    assert bad.status_code == 422 and bad.json()["details"][0]["field"] == "source"
    stats = world.client.get(
        f"/api/campaigns/{world.campaign}/statistics",
        params={"unit": "WH-HC", "table": "weihai_2024_a1"},
        headers=world.as_("manager.wh-hc"),
    ).json()
    items = {i["code"]: i["value"] for i in stats["tables"][0]["items"]}
    assert (items["A3"], items["A"]) == ("0.0800", "0.0800")
    listed = world.client.get(
        f"/api/campaigns/{world.campaign}/unit-funds", headers=world.as_("clerk.wh-hc-001")
    )
    assert [f["unit"] for f in listed.json()] == ["WH-HC-001"]


def bozhou(organizer: str = "WH", **changes: Any) -> dict[str, Any]:
    raw = json.loads(BOZHOU.read_text(encoding="utf-8"))
    return {**raw, "organizer": organizer, **changes}


def test_a_bozhou_2023_campaign_shows_only_its_own_tables(world: World) -> None:
    admin = world.as_("admin.wh")
    unknown = world.client.post(
        "/api/campaigns",
        json=bozhou(statistics={"tables": ["anhui_2023_aid", "nope"], "local_decision": True}),
        headers=admin,
    )
    assert unknown.status_code == 422, unknown.text
    assert unknown.json()["details"][0]["field"] == "statistics.tables.1"
    loaded = world.client.post("/api/campaigns", json=bozhou(), headers=admin)
    assert loaded.status_code == 201, loaded.text
    campaign = loaded.json()["id"]
    manager = world.as_("manager.wh")

    stats = world.client.get(f"/api/campaigns/{campaign}/statistics", headers=manager)
    assert [t["key"] for t in stats.json()["tables"]] == BOZHOU_TABLES
    assert stats.json()["cutoff"] is None  # the notice states none
    foreign = world.client.get(
        f"/api/campaigns/{campaign}/statistics",
        params={"table": "weihai_2024_a1"},
        headers=manager,
    )
    assert foreign.status_code == 422
    assert foreign.json()["details"][0]["code"] == "table_not_in_campaign"
    book = world.client.get(
        f"/api/campaigns/{campaign}/statistics", params={"format": "xlsx"}, headers=manager
    )
    assert load_workbook(io.BytesIO(book.content)).sheetnames == BOZHOU_TABLES

    sign_in_page(world, "manager.wh")
    page = world.client.get(f"/dashboard?campaign={campaign}")
    assert page.status_code == 200
    for key in BY_KEY:
        assert (f'data-table="{key}"' in page.text) is (key in BOZHOU_TABLES), key
    assert "2024年工会金秋助学活动情况统计表" not in page.text
    exported = world.client.get(f"/statistics.xlsx?campaign={campaign}&unit=WH")
    assert exported.status_code == 200
    assert load_workbook(io.BytesIO(exported.content)).sheetnames == BOZHOU_TABLES


def test_the_approver_chooses_a_donors_fund_on_the_case_page(world: World) -> None:
    donor = post_donor(world, DONOR).json()
    outside = case_in(
        world.engine, world.clock, world.campaign, "WH-WD-001", CaseState.APPROVAL, approved=2,
        **OUTSIDE,
    )  # fmt: skip
    matching = case_in(
        world.engine, world.clock, world.campaign, "WH-HC-001", CaseState.APPROVAL, approved=2,
        **MIGRANT_FRESHMAN,
    )  # fmt: skip
    world.clock.set(APPROVAL_DAY)
    csrf = sign_in_page(world, "approver.wh")
    page = world.client.get(f"/cases/{outside}")
    assert page.status_code == 200
    assert (
        f'<option value="{donor["fund_source"]}">捐赠方：威海某爱心企业（结余 10000.00 元）'
        in page.text
    )
    for case_id in (outside, matching):
        answer = world.client.post(
            f"/cases/{case_id}/events",
            data={
                "csrf_token": csrf,
                "event": "approve",
                "version": str(case_row(world.engine, case_id).version),
                "opinion": "同意",
                "fund_source": donor["fund_source"],
            },
            follow_redirects=True,
        )
        assert answer.status_code == 200
        if case_id == outside:
            assert "未能办理" in answer.text and "只资助本科学生" in answer.text
            assert "只资助2024年当年考入的新生" in answer.text
    assert case_row(world.engine, outside).state == "approval"
    row = case_row(world.engine, matching)
    assert (row.state, row.approved_amount_fen) == ("disbursement", 300_000)
    listed = world.client.get(
        f"/api/campaigns/{world.campaign}/donors", headers=world.as_("finance.wh")
    ).json()
    assert (listed[0]["reserved"], listed[0]["free"]) == ("3000.00", "7000.00")
