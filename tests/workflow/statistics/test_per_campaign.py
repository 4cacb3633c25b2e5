"""Statistics as each campaign's file says them (both databases): Weihai 附件2 one row per donor
with the students its fund actually aided, recounted in SQL; the cut-off date applied; figures
from reports counted once per unit and kind — a resubmission replaces, a unit under one that
reported is not added again, kinds are never summed together —; 自筹 and donors adding up from
the units to their district and to the city."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from typing import Any

from openpyxl import load_workbook
from sqlalchemy import Engine, text

from jinqiu.states import CaseEvent, CaseState
from jinqiu.workflow.cases.engine import apply_event
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.donors.service import UnitFundIn, record_unit_fund
from jinqiu.workflow.statistics.compute import statistics
from jinqiu.workflow.statistics.reports import submit_report
from jinqiu.workflow.statistics.xlsx import workbook
from tests.factories import actor, case_in, case_row, weihai
from tests.workflow.donors.test_donor_funds import (
    APPROVAL_DAY,
    MIGRANT_FRESHMAN,
    add_donor,
    approve,
    reconciled,
)

CUTOFF = "2024-08-30"  # Weihai 附件1 填报说明


def tables(engine: Engine, campaign: int, unit: str, *keys: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM unit WHERE code = :c"), {"c": unit}).one()
        stats = statistics(conn, campaign, row, list(keys) or None)
    return {t["key"]: t for t in stats["tables"]}


def items(engine: Engine, campaign: int, unit: str, key: str) -> dict[str, Any]:
    table = tables(engine, campaign, unit, key)[key]
    return {i["code"]: i["value"] for i in table["items"]}


def pay(engine: Engine, clock: ManualClock, case_id: int, on: dt.datetime) -> None:
    clock.set(on)
    with transaction(engine) as conn:
        apply_event(
            conn,
            case_id=case_id,
            event=CaseEvent.PAY,
            expected_version=case_row(engine, case_id).version,
            actor=actor(conn, "WH", "finance"),
            clock=clock,
        )


def recount_donors(engine: Engine, campaign: int, unit: str) -> list[tuple[Any, ...]]:
    """附件2's rows from the raw tables: each donor of the subtree, its amount in yuan, the
    cases its fund paid by the cut-off, its summary."""
    with engine.connect() as conn:
        return [
            (r.name, f"{Decimal(r.amount_fen) / 100:.2f}", int(r.aided), r.summary)
            for r in conn.execute(
                text(
                    "SELECT d.name, d.amount_fen, d.summary,"
                    "       SUM(CASE WHEN k.paid_on IS NOT NULL AND k.paid_on <= :cutoff"
                    "           THEN 1 ELSE 0 END) AS aided"
                    "  FROM donor d"
                    "  JOIN unit u ON u.id = d.unit_id"
                    "  LEFT JOIN aid_case k ON k.fund_source_id = d.fund_source_id"
                    " WHERE d.campaign_id = :c AND u.path LIKE :p"
                    " GROUP BY d.id, d.name, d.amount_fen, d.summary ORDER BY d.id"
                ),
                {
                    "c": campaign,
                    "p": f"%/{unit}/%",
                    "cutoff": CUTOFF,
                },
            )
        ]


def test_annex2_is_one_row_per_donor_with_the_students_it_paid_by_the_cutoff(
    db: Engine, clock: ManualClock
) -> None:
    _tree, campaign = weihai(db, clock)
    huancui = add_donor(db, clock, campaign, unit="WH-HC", intent={"unit": "WH-HC"})
    city = add_donor(db, clock, campaign, name="威海某慈善基金会", amount="8000", summary="")
    add_donor(db, clock, campaign, name="文登某商会", amount="800", unit="WH-WD", summary="物资")
    first, second, late, waiting = (
        case_in(db, clock, campaign, unit, CaseState.APPROVAL, approved=2, **MIGRANT_FRESHMAN)
        for unit in ("WH-HC-001", "WH-HC-002", "WH-WD-001", "WH-WD-002")
    )
    clock.set(APPROVAL_DAY)
    for case_id, donor in ((first, huancui), (second, huancui), (late, city), (waiting, city)):
        approve(db, clock, case_id, fund_source=f"donor:{donor}")
    pay(db, clock, first, dt.datetime(2024, 8, 27, 10))
    pay(db, clock, second, dt.datetime(2024, 8, 30, 16))
    pay(db, clock, late, dt.datetime(2024, 8, 31, 10))  # after the cut-off: not counted
    reconciled(db, campaign)

    for unit, names in (
        ("WH", ["威海某爱心企业", "威海某慈善基金会", "文登某商会"]),
        ("WH-HC", ["威海某爱心企业"]),
        ("WH-RC", []),
    ):
        annex = tables(db, campaign, unit)["weihai_2024_a2"]
        assert annex["row_columns"] == ["单位名称", "助学资金（元）", "人数", "整合资源情况简介"]
        rows = [(r["name"], r["amount"], r["aided"], r["summary"]) for r in annex["rows"]]
        assert rows == recount_donors(db, campaign, unit)
        assert [r[0] for r in rows] == names
        totals = {i["code"]: i["value"] for i in annex["items"]}
        assert totals["S1"] == str(sum((Decimal(r[1]) for r in rows), Decimal("0.00")))
        assert (totals["S2"], totals["S3"]) == (sum(r[2] for r in rows), len(rows))
    assert recount_donors(db, campaign, "WH")[:2] == [
        ("威海某爱心企业", "10000.00", 2, "定向资助环翠区考入大学的农民工子女"),
        ("威海某慈善基金会", "8000.00", 0, ""),
    ]
    # The workbook: the totals, then one row per donor under the notice's four columns.
    with db.connect() as conn:
        city = conn.execute(text("SELECT * FROM unit WHERE code = 'WH'")).one()
        stats = statistics(conn, campaign, city)
    sheet = load_workbook(io.BytesIO(workbook(stats, today=dt.date(2024, 9, 2))))["weihai_2024_a2"]
    cells = [list(r) for r in sheet.iter_rows(min_row=1, values_only=True)]
    top = cells.index(["单位名称", "助学资金（元）", "人数", "整合资源情况简介"])
    assert [tuple(r[:4]) for r in cells[top + 1 : top + 4]] == [
        (name, float(amount), aided, summary or None)
        for name, amount, aided, summary in recount_donors(db, campaign, "WH")
    ]
    # 附件1 applies the same cut-off: two students aided, 6000 yuan, not the case paid 8/31.
    a1 = items(db, campaign, "WH", "weihai_2024_a1")
    assert (a1["C"], a1["B"]) == (2, "0.6000")


def file(engine: Engine, clock: ManualClock, campaign: int, unit: str, kind: str, **f: Any) -> int:
    with transaction(engine) as conn:
        return submit_report(
            conn,
            campaign_id=campaign,
            unit_code=unit,
            kind=kind,
            note=None,
            actor=actor(conn, unit, "manager"),
            clock=clock,
            figures=f,
        ).revision


def test_report_figures_count_once_per_unit_and_kind(db: Engine, clock: ManualClock) -> None:
    """托管班 (Qingpu 06A / 06A+), still typed in: each unit's latest report, once."""
    _tree, campaign = weihai(db, clock)
    aid, demand = "qingpu_2017_aid", "anhui_2023_demand"
    assert file(db, clock, campaign, "WH-HC-001", "statistics", **{"06A": 3, "06A+": 10}) == 1
    resubmitted = file(db, clock, campaign, "WH-HC-001", "statistics", **{"06A": 5, "06A+": 12})
    assert resubmitted == 2
    assert (items(db, campaign, "WH-HC", aid)["06A"], items(db, campaign, "WH", aid)["06A"]) == (
        5,
        5,
    )
    # The district reports for its whole subtree: its grassroots union's report is in it.
    file(db, clock, campaign, "WH-HC", "statistics", **{"06A": 20, "06A+": 40})
    assert items(db, campaign, "WH-HC-001", aid)["06A"] == 5
    district, city = items(db, campaign, "WH-HC", aid), items(db, campaign, "WH", aid)
    assert (district["06A"], city["06A+"]) == (20, 40)
    file(db, clock, campaign, "WH-WD-001", "statistics", **{"06A": 7})
    assert items(db, campaign, "WH", aid)["06A"] == 27
    # Another kind's figures stay in their own table, never added to the statistics report's.
    file(db, clock, campaign, "WH-HC", "demand_summary", demand={"D1": 40, "D1$": "12"})
    assert items(db, campaign, "WH", aid)["06A"] == 27
    needs = items(db, campaign, "WH", demand)
    assert (needs["D1"], needs["D"], needs["D1$"], needs["D$"]) == (40, 40, "12", "12.0000")


def test_raised_funds_of_the_units_add_up_to_their_district_and_the_city(
    db: Engine, clock: ManualClock
) -> None:
    _tree, campaign = weihai(db, clock)
    for unit, source, amount in (
        ("WH", "other", "200"),
        ("WH-HC", "government", "1000"),
        ("WH-HC-001", "union", "500"),
        ("WH-HC-002", "union", "150"),
        ("WH-WD", "donation", "300"),
    ):
        with transaction(db) as conn:
            record_unit_fund(
                conn,
                campaign,
                UnitFundIn(unit=unit, source=source, amount=amount, note="自筹"),  # type: ignore[arg-type]
                actor=actor(conn, unit, "manager"),
                clock=clock,
            )
    add_donor(db, clock, campaign, unit="WH-HC-001")  # 10000 yuan, 社会捐助 of WH-HC-001
    case_id = case_in(db, clock, campaign, "WH-HC-001", CaseState.FOLLOW_UP, **MIGRANT_FRESHMAN)
    assert case_row(db, case_id).paid_on is not None

    def a1(unit: str) -> dict[str, Decimal]:
        return {k: Decimal(str(v)) for k, v in items(db, campaign, unit, "weihai_2024_a1").items()}

    grassroots = [a1(f"WH-HC-00{n}") for n in (1, 2, 3)]
    district = a1("WH-HC")
    assert (district["A1"], district["A2"], district["A3"]) == (
        Decimal("0.1000"),
        Decimal("1.0000"),
        Decimal("0.0650"),
    )
    with db.connect() as conn:
        children = [
            code
            for (code,) in conn.execute(
                text(
                    "SELECT c.code FROM unit c JOIN unit p ON p.id = c.parent_id"
                    " WHERE p.code = 'WH' ORDER BY c.code"
                )
            )
        ]
        budgets = dict(
            conn.execute(
                text(
                    "SELECT source, budget_fen FROM fund_source WHERE campaign_id = :c"
                    " AND source NOT LIKE 'donor:%'"
                ),
                {"c": campaign},
            ).all()
        )
    cities = a1("WH")
    districts = [a1(code) for code in children]
    own_district = {"A1": Decimal("0.1000")}  # WH-HC's own 自筹
    own_city = {
        f"A{n}": Decimal(budgets[s]) / 1_000_000
        for n, s in enumerate(("government", "donation", "union", "other"), start=1)
    }
    own_city["A4"] += Decimal("0.0200")  # the city's own 自筹
    own_city["A"] = sum(own_city.values(), Decimal(0))
    own_district["A"] = own_district["A1"]
    for code in cities:
        if code in ("H", "I"):
            continue  # from reports: none filed here
        below = sum((g[code] for g in grassroots), Decimal(0))
        assert district[code] == below + own_district.get(code, 0), code
        assert cities[code] == sum((d[code] for d in districts), Decimal(0)) + own_city.get(
            code, 0
        ), code
    assert cities["C"] == 1 and cities["D"] == 1
