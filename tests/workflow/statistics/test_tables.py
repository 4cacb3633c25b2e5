"""The statistics tables on both databases, after a whole Weihai campaign (the demo, 80 cases):
the .xlsx the API serves holds the campaign's own two tables; the workbook of every table, for
the same cases, lists every item with its code and label; the notices' formulas hold; the
figures equal a recount done here with plain SQL from the raw cases (paid by the cut-off date);
the districts' tables add up to the city's; report figures of two districts add up at the city.

The demo runs once per database (module-scoped: it takes seconds), so no test here may use
`db` or `world`, whose wipe would remove it."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import Engine, text

from jinqiu.api.security import issue_token
from jinqiu.demo.run import run_demo
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.config import Settings
from jinqiu.workflow.db import transaction
from jinqiu.workflow.statistics.compute import statistics
from jinqiu.workflow.statistics.tables import TABLES
from jinqiu.workflow.statistics.xlsx import workbook
from jinqiu.workflow.users.models import User
from tests import snapshots
from tests.conftest import _wipe
from tests.shared_app import app_on

user_t = User.__table__  # type: ignore[attr-defined]
SETTINGS = Settings(secret_key="statistics-test-secret-0123456789abcdef", token_minutes=600)
DISTRICTS = ("WH-GQ", "WH-HC", "WH-RC", "WH-RS", "WH-SZ", "WH-WD")
FOUR = Decimal("0.0001")

# The education groups of the notices, written out here rather than imported.
GROUP = {
    "postgraduate": "university",
    "undergraduate": "university",
    "college": "university",
    "senior": "senior",
    "vocational": "senior",
    "junior": "basic",
    "primary": "basic",
    "preschool": "basic",
    "special": "basic",
}

# The notices' formulas, copied from the printed tables.
FORMULAS: dict[str, dict[str, tuple[str, ...]]] = {
    "weihai_2024_a1": {
        "A": ("A1", "A2", "A3", "A4"),
        "B": ("B1", "B2", "B3"),
        "C": ("C1", "C2", "C3"),
    },
    "qingpu_2017_employment": {"01A": ("01B", "01C")},
    "qingpu_2017_aid": {
        "01A": ("01B", "01C", "01D", "01E"),
        "02A": ("02B", "02C", "02D"),
        "03A": ("03B", "03C", "03D"),
        "04A": ("04B", "04C", "04D"),
        "05A": ("05B", "05C", "05D"),
        "05A$": ("05B$", "05C$", "05D$"),
    },
    "anhui_2023_demand": {"D": ("D1", "D2", "D3"), "D$": ("D1$", "D2$", "D3$")},
    "anhui_2023_aid": {
        "01A": ("01B", "01C", "01D", "01E"),
        "02A": ("02B", "02C", "02D"),
        "03A": ("03B", "03C", "03D"),
        "04A": ("04B", "04C", "04D"),
        "04A$": ("04B$", "04C$", "04D$"),
    },
    "dalian_2011": {
        "06A": ("06B", "06C"),
        "01A": ("01B", "01C", "01D", "01E"),
        "02A": ("02B", "02C", "02D"),
        "03A": ("03B", "03C", "03D"),
        "04A": ("04B", "04C", "04D"),
        "04A$": ("04B$", "04C$", "04D$"),
    },
}
WEIHAI_CODES = [
    "A",
    "A1",
    "A2",
    "A3",
    "A4",
    "B",
    "B1",
    "B2",
    "B3",
    "C",
    "C1",
    "C2",
    "C3",
    "D",
    "E",
    "F",
    "G",
    "H",
    "I",
]
# Funds raised: the city's own budgets (the organiser's) come on top of what its districts
# raised; every other case-derived item of the city is its districts' sum.
RAISED = {
    "weihai_2024_a1": {
        "A": None,
        "A1": "government",
        "A2": "donation",
        "A3": "union",
        "A4": "other",
    },
    "qingpu_2017_aid": {
        "01A": None,
        "01B": "government",
        "01C": "donation",
        "01D": "union",
        "01E": "other",
    },
    "anhui_2023_aid": {
        "01A": None,
        "01B": "government",
        "01C": "donation",
        "01D": "union",
        "01E": "other",
    },
    "dalian_2011": {
        "01A": None,
        "01B": "government",
        "01C": "donation",
        "01D": "union",
        "01E": "other",
    },
}
CUTOFF = dt.date(2024, 8, 30)  # Weihai 附件1: 数据统计截止日期为2024年8月30日


@dataclass
class Run:
    engine: Engine
    campaign: int
    client: TestClient
    clock: ManualClock

    def headers(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(SETTINGS, username, self.clock.now())}"}

    def get(self, unit: str | None, **params: Any) -> Any:
        params = {**params, **({"unit": unit} if unit else {})}
        response = self.client.get(
            f"/api/campaigns/{self.campaign}/statistics",
            params=params,
            headers=self.headers("manager.wh"),
        )
        assert response.status_code == 200, response.text
        return response

    def served(self, unit: str | None = None) -> dict[str, Any]:
        """{table key: sheet} of the workbook the API serves for the unit (default: the city)."""
        response = self.get(unit, format="xlsx")
        assert response.headers["content-type"].startswith(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
        book = load_workbook(io.BytesIO(response.content))
        return {name: book[name] for name in book.sheetnames}

    def xlsx(self, unit: str | None = None) -> dict[str, Any]:
        """{table key: sheet} of the workbook of every table (the API serves only the
        campaign's own), computed over the same cases by the same functions."""
        with self.engine.connect() as conn:
            row = conn.execute(
                text("SELECT * FROM unit WHERE code = :c"), {"c": unit or "WH"}
            ).one()
            stats = statistics(conn, self.campaign, row, [t.key for t in TABLES])
        book = load_workbook(io.BytesIO(workbook(stats, today=self.clock.now().date())))
        return {name: book[name] for name in book.sheetnames}

    def values(self, unit: str | None = None) -> dict[str, dict[str, Decimal]]:
        """{table key: {item code: value}} read back from the workbook's cells."""
        return {key: read_items(sheet)[1] for key, sheet in self.xlsx(unit).items()}


def read_items(sheet: Any) -> tuple[list[tuple[str, str]], dict[str, Decimal]]:
    """(code, label) rows and code → value, from row 4 on, until the codes stop."""
    rows: list[tuple[str, str]] = []
    values: dict[str, Decimal] = {}
    for row in sheet.iter_rows(min_row=4, values_only=True):
        _group, code, label, value = row[:4]
        if code is None:
            break
        rows.append((code, label))
        assert isinstance(value, (int, float)) and not isinstance(value, bool), (code, value)
        values[code] = Decimal(str(value))
    return rows, values


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def demo_run(request: pytest.FixtureRequest) -> Iterator[tuple[Run, snapshots.Snapshot]]:
    """The demo's campaign (80 cases), run once per database for the module, and its rows."""
    engine: Engine = request.getfixturevalue(f"{request.param.replace('postgresql', 'pg')}_engine")
    _wipe(engine)
    run_demo(engine, cases=80, say=lambda _line: None)
    clock = ManualClock(dt.datetime(2024, 9, 6, 9))
    with transaction(engine) as conn:
        campaign = conn.execute(text("SELECT max(id) FROM campaign")).scalar_one()
        units = dict(conn.execute(text("SELECT code, id FROM unit")).all())
        # Tokens are issued directly below: no password is ever checked for these users.
        conn.execute(
            user_t.insert(),
            [
                {
                    "username": f"manager.{code.lower()}",
                    "password_hash": "!",
                    "display_name": code,
                    "unit_id": units[code],
                    "roles": ["manager"],
                    "is_active": True,
                    "created_at": clock.now(),
                }
                for code in ("WH", "WH-HC", "WH-WD")
            ],
        )
    app = app_on(engine, clock, SETTINGS)
    snapshot = snapshots.take(engine)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Run(engine=engine, campaign=int(campaign), client=client, clock=clock), snapshot
    finally:
        snapshots.drop(engine, snapshot)
        _wipe(engine)


@pytest.fixture
def run(demo_run: tuple[Run, snapshots.Snapshot]) -> Run:
    """The demo's rows put back before each test: a test that files or edits reports leaves
    nothing behind for the next (any order)."""
    run, snapshot = demo_run
    snapshots.restore(run.engine, snapshot)
    run.clock.set(dt.datetime(2024, 9, 6, 9))
    return run


# -- the recount, in plain SQL ----------------------------------------------------------------
def wan(fen: int) -> Decimal:
    return (Decimal(fen) / Decimal(1_000_000)).quantize(FOUR)  # 1 万元 = 10 000 元 = 1 000 000 分


def categories_of(raw: Any) -> list[str]:
    return json.loads(raw) if isinstance(raw, str) else list(raw or [])


def recount(engine: Engine, campaign: int, unit: str) -> dict[str, Decimal]:
    """The case-derived figures of the unit's subtree, by metric name, from the raw rows:
    aided = paid out (the case reached follow-up or closed), amounts in 万元."""
    with engine.connect() as conn:
        path = conn.execute(text("SELECT path FROM unit WHERE code = :c"), {"c": unit}).scalar_one()
        year, organizer = conn.execute(
            text(
                "SELECT c.year, u.code FROM campaign c JOIN unit u ON u.id = c.organizer_unit_id"
                " WHERE c.id = :c"
            ),
            {"c": campaign},
        ).one()
        rows = conn.execute(
            text(
                "SELECT k.state, k.approved_amount_fen AS amount, s.education_level AS level,"
                "       s.enrollment_year, w.categories, w.archive_status, f.source, k.paid_on"
                "  FROM aid_case k"
                "  JOIN unit u ON u.id = k.unit_id"
                "  JOIN student s ON s.id = k.student_id"
                "  JOIN worker w ON w.id = k.worker_id"
                "  LEFT JOIN fund_source f ON f.id = k.fund_source_id"
                " WHERE k.campaign_id = :c AND u.path LIKE :p"
            ),
            {"c": campaign, "p": f"{path}%"},
        ).all()
        organizer_path = conn.execute(
            text("SELECT path FROM unit WHERE code = :c"), {"c": organizer}
        ).scalar_one()
        budgets = dict(
            conn.execute(
                text(
                    "SELECT source, budget_fen FROM fund_source WHERE campaign_id = :c"
                    " AND source NOT LIKE 'donor:%'"
                ),
                {"c": campaign},
            ).all()
        )
        own_funds = dict(
            conn.execute(
                text(
                    "SELECT f.source, sum(f.amount_fen) FROM unit_fund f"
                    " JOIN unit u ON u.id = f.unit_id"
                    " WHERE f.campaign_id = :c AND u.path LIKE :p GROUP BY f.source"
                ),
                {"c": campaign, "p": f"{path}%"},
            ).all()
        )
        donors = conn.execute(
            text(
                "SELECT d.amount_fen,"
                "       (SELECT count(*) FROM aid_case k WHERE k.fund_source_id = d.fund_source_id"
                "         AND k.paid_on <= :cutoff) AS aided"
                "  FROM donor d JOIN unit u ON u.id = d.unit_id"
                " WHERE d.campaign_id = :c AND u.path LIKE :p"
            ),
            {"c": campaign, "p": f"{path}%", "cutoff": CUTOFF.isoformat()},
        ).all()
    paid_fen: Counter[str] = Counter()
    aided: Counter[str] = Counter()
    entering: Counter[str] = Counter()
    for r in rows:
        group = GROUP[r.level]
        if (
            r.state not in ("rejected", "withdrawn")
            and r.archive_status != "none"
            and r.enrollment_year == year
        ):
            entering[group] += 1
        if r.state not in ("follow_up", "closed") or str(r.paid_on) > CUTOFF.isoformat():
            continue
        tags = [
            group,
            *categories_of(r.categories),
            *(f"{c}:{group}" for c in categories_of(r.categories)),
        ]
        if r.source == "donation":
            tags.append("donation")
        for tag in tags:
            paid_fen[tag] += r.amount
            aided[tag] += 1
    out: dict[str, Decimal] = {}
    for source in ("government", "donation", "union", "other"):
        raised = own_funds.get(source, 0) + (
            budgets.get(source, 0) if organizer_path.startswith(path) else 0
        )
        if source == "donation":
            raised += sum(d.amount_fen for d in donors)
        out[f"raised_{source}"] = wan(raised)
    for group in ("university", "senior", "basic"):
        out[f"paid_{group}"] = wan(paid_fen[group])
        out[f"aided_{group}"] = Decimal(aided[group])
        out[f"entering_{group}"] = Decimal(entering[group])
        out[f"paid_migrant_{group}"] = wan(paid_fen[f"migrant_worker:{group}"])
        out[f"aided_migrant_{group}"] = Decimal(aided[f"migrant_worker:{group}"])
    for category, name in (
        ("migrant_worker", "migrant"),
        ("gig_worker", "gig"),
        ("single_mother", "single_mother"),
    ):
        out[f"paid_{name}"] = wan(paid_fen[category])
        out[f"aided_{name}"] = Decimal(aided[category])
    out["donor_amount_yuan"] = (Decimal(sum(d.amount_fen for d in donors)) / 100).quantize(
        Decimal("0.01")
    )
    out["aided_by_donors"] = Decimal(sum(d.aided for d in donors))
    out["donors"] = Decimal(len(donors))
    return out


# Where each case-derived item of each table comes from, written out from the notices.
EXPECTED_METRIC: dict[str, dict[str, str]] = {
    "weihai_2024_a1": {
        "A1": "raised_government",
        "A2": "raised_donation",
        "A3": "raised_union",
        "A4": "raised_other",
        "B1": "paid_university",
        "B2": "paid_senior",
        "B3": "paid_basic",
        "C1": "aided_university",
        "C2": "aided_senior",
        "C3": "aided_basic",
        "D": "aided_migrant",
        "E": "paid_migrant",
        "F": "aided_gig",
        "G": "paid_gig",
    },
    "weihai_2024_a2": {"S1": "donor_amount_yuan", "S2": "aided_by_donors", "S3": "donors"},
    "qingpu_2017_aid": {
        "01B": "raised_government",
        "01C": "raised_donation",
        "01D": "raised_union",
        "01E": "raised_other",
        "02B": "paid_basic",
        "02C": "paid_senior",
        "02D": "paid_university",
        "03B": "entering_basic",
        "03C": "entering_senior",
        "03D": "entering_university",
        "04B": "aided_basic",
        "04C": "aided_senior",
        "04D": "aided_university",
        "05B": "aided_migrant_basic",
        "05B$": "paid_migrant_basic",
        "05C": "aided_migrant_senior",
        "05C$": "paid_migrant_senior",
        "05D": "aided_migrant_university",
        "05D$": "paid_migrant_university",
    },
    "anhui_2023_aid": {
        "01B": "raised_government",
        "01C": "raised_donation",
        "01D": "raised_union",
        "01E": "raised_other",
        "02B": "paid_basic",
        "02C": "paid_senior",
        "02D": "paid_university",
        "03B": "aided_basic",
        "03C": "aided_senior",
        "03D": "aided_university",
        "04B": "aided_migrant_basic",
        "04B$": "paid_migrant_basic",
        "04C": "aided_migrant_senior",
        "04C$": "paid_migrant_senior",
        "04D": "aided_migrant_university",
        "04D$": "paid_migrant_university",
    },
    "dalian_2011": {
        "01B": "raised_government",
        "01C": "raised_donation",
        "01D": "raised_union",
        "01E": "raised_other",
        "02B": "paid_basic",
        "02C": "paid_senior",
        "02D": "paid_university",
        "03B": "aided_basic",
        "03C": "aided_senior",
        "03D": "aided_university",
        "04B": "aided_migrant_basic",
        "04B$": "paid_migrant_basic",
        "04C": "aided_migrant_senior",
        "04C$": "paid_migrant_senior",
        "04D": "aided_migrant_university",
        "04D$": "paid_migrant_university",
        "05A": "aided_single_mother",
        "05A$": "paid_single_mother",
    },
}


def report_figures(engine: Engine, campaign: int, unit: str) -> dict[str, Decimal]:
    """The submitted figures of the unit's subtree, summed by (flattened) key."""
    with engine.connect() as conn:
        path = conn.execute(text("SELECT path FROM unit WHERE code = :c"), {"c": unit}).scalar_one()
        raws = conn.execute(
            text(
                "SELECT r.figures FROM report_submission r JOIN unit u ON u.id = r.unit_id"
                " WHERE r.campaign_id = :c AND u.path LIKE :p"
            ),
            {"c": campaign, "p": f"{path}%"},
        ).scalars()
        totals: Counter[str] = Counter()
        for raw in raws:
            figures = json.loads(raw) if isinstance(raw, str) else raw or {}
            for key, value in figures.items():
                pairs = value.items() if isinstance(value, dict) else [("", value)]
                for sub, v in pairs:
                    totals[f"{key}.{sub}" if sub else key] += Decimal(str(v))
    return dict(totals)


# -- the tests -----------------------------------------------------------------------------------
def test_the_api_serves_the_campaigns_own_tables_only(run: Run) -> None:
    """Weihai's file names 附件1 and 附件2: the JSON and the workbook hold those two."""
    assert list(run.served()) == ["weihai_2024_a1", "weihai_2024_a2"]
    body = run.get(None).json()
    assert [t["key"] for t in body["tables"]] == ["weihai_2024_a1", "weihai_2024_a2"]
    assert body["cutoff"] == CUTOFF.isoformat()
    refused = run.client.get(
        f"/api/campaigns/{run.campaign}/statistics",
        params={"table": "dalian_2011"},
        headers=run.headers("manager.wh"),
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["details"][0]["code"] == "table_not_in_campaign"


def test_the_workbook_has_every_item_of_every_table_with_code_and_label(run: Run) -> None:
    sheets = run.xlsx()
    assert list(sheets) == [t.key for t in TABLES]
    for table in TABLES:
        sheet = sheets[table.key]
        assert sheet["A1"].value == table.title
        assert sheet["A2"].value == "填报单位：威海市总工会"
        assert [c.value for c in sheet[3]][:4] == [
            table.columns[0],
            "代码",
            table.columns[1],
            table.columns[2],
        ]
        rows, _values = read_items(sheet)
        assert rows == [(i.code, i.label) for i in table.items], table.key
        if table.note:
            assert sheet.cell(row=4 + len(rows) + 1, column=1).value == table.note
    weihai, _ = read_items(sheets["weihai_2024_a1"])
    assert [code for code, _ in weihai] == WEIHAI_CODES
    assert dict(weihai)["B"] == "发放助学款总额（万元）B=B1+B2+B3"
    for row, (code, _label) in enumerate(weihai, start=4):
        unit_of_item = next(i.unit for i in TABLES[0].items if i.code == code)
        if unit_of_item == "万元":
            assert sheets["weihai_2024_a1"].cell(row=row, column=4).number_format == "0.0000"


@pytest.mark.parametrize("unit", [None, "WH-HC"])
def test_the_notices_formulas_hold(run: Run, unit: str | None) -> None:
    values = run.values(unit)
    for key, formulas in FORMULAS.items():
        for total, parts in formulas.items():
            assert values[key][total] == sum(values[key][p] for p in parts), (unit, key, total)
    # The same facts in the other tables: Weihai's B and C are Qingpu's and Dalian's 02A, 04A/03A.
    assert (
        values["weihai_2024_a1"]["B"]
        == values["qingpu_2017_aid"]["02A"]
        == values["dalian_2011"]["02A"]
    )
    assert (
        values["weihai_2024_a1"]["C"]
        == values["qingpu_2017_aid"]["04A"]
        == values["dalian_2011"]["03A"]
    )
    assert (
        values["weihai_2024_a1"]["D"]
        == values["qingpu_2017_aid"]["05A"]
        == values["dalian_2011"]["04A"]
    )
    assert (
        values["weihai_2024_a1"]["E"]
        == values["qingpu_2017_aid"]["05A$"]
        == values["dalian_2011"]["04A$"]
    )
    # Work-study posts (Weihai H, Qingpu 07A+) and the graduates (Qingpu 01A, Dalian 06A).
    assert values["weihai_2024_a1"]["H"] == values["qingpu_2017_aid"]["07A+"]
    assert values["qingpu_2017_employment"]["01A"] == values["dalian_2011"]["06A"]


@pytest.mark.parametrize("unit", ["WH", "WH-HC", "WH-WD"])
def test_the_figures_equal_a_recount_from_the_cases(run: Run, unit: str) -> None:
    values = run.values(unit)
    expected = recount(run.engine, run.campaign, unit)
    for key, items in EXPECTED_METRIC.items():
        for code, metric in items.items():
            assert values[key][code] == expected[metric], (unit, key, code, metric)
    # Against the cases' own totals too: every paid case is aided exactly once.
    with run.engine.connect() as conn:
        paid, fen = conn.execute(
            text(
                "SELECT count(*), coalesce(sum(k.approved_amount_fen), 0) FROM aid_case k"
                " JOIN unit u ON u.id = k.unit_id WHERE k.campaign_id = :c AND k.paid_on IS NOT NULL"
                " AND u.path LIKE :p"
            ),
            {"c": run.campaign, "p": f"%/{unit}/%"},
        ).one()
    assert values["weihai_2024_a1"]["C"] == paid
    assert values["weihai_2024_a1"]["B"] == wan(fen)
    if unit == "WH":
        # The demo's campaign is realistic enough for the recount to mean something.
        assert paid >= 40
        assert all(expected[f"aided_{g}"] > 0 for g in ("university", "senior", "basic"))
        assert expected["aided_migrant"] + expected["aided_gig"] > 0
        with run.engine.connect() as conn:
            # The campaign's budgets and its donors' funds (rows of fund_source), and 自筹.
            budget = conn.execute(
                text("SELECT sum(budget_fen) FROM fund_source WHERE campaign_id = :c"),
                {"c": run.campaign},
            ).scalar_one()
            raised_by_units = conn.execute(
                text("SELECT coalesce(sum(amount_fen), 0) FROM unit_fund WHERE campaign_id = :c"),
                {"c": run.campaign},
            ).scalar_one()
            donors = conn.execute(
                text("SELECT count(*) FROM donor WHERE campaign_id = :c"), {"c": run.campaign}
            ).scalar_one()
        assert donors > 0 and raised_by_units > 0  # the demo records both
        assert values["weihai_2024_a1"]["A"] == wan(budget + raised_by_units)


def test_the_districts_add_up_to_the_city(run: Run) -> None:
    city = run.values()
    districts = [run.values(code) for code in DISTRICTS]
    with run.engine.connect() as conn:
        budgets: dict[str, int] = {}
        for source, fen in conn.execute(
            text("SELECT source, budget_fen FROM fund_source WHERE campaign_id = :c"),
            {"c": run.campaign},
        ):
            # A donor's fund (donor:<id>) is 社会捐助 of the unit that brought it in: the city.
            source = "donation" if source.startswith("donor:") else source
            budgets[source] = budgets.get(source, 0) + int(fen)
        # The city's own donors (附件2): the organiser's figures, no district's.
        own = {"c": run.campaign, "cutoff": dt.date(2024, 8, 30)}
        by_city = "d.campaign_id = :c AND d.unit_id = (SELECT id FROM unit WHERE code = 'WH')"
        amount, donors = conn.execute(
            text(f"SELECT coalesce(sum(d.amount_fen), 0), count(*) FROM donor d WHERE {by_city}"),
            own,
        ).one()
        aided = conn.execute(
            text(
                "SELECT count(*) FROM aid_case k JOIN donor d ON d.fund_source_id = k.fund_source_id"
                f" WHERE {by_city} AND k.paid_on IS NOT NULL AND k.paid_on <= :cutoff"
            ),
            own,
        ).scalar_one()
    city_donors = {"S1": Decimal(amount) / 100, "S2": aided, "S3": donors}
    assert all(city_donors.values())  # the demo's donors paid students
    for table in TABLES:
        for item in table.items:
            if item.input is not None:
                continue
            total = sum(d[table.key][item.code] for d in districts)
            if item.code in RAISED.get(table.key, {}):
                source = RAISED[table.key][item.code]
                total += wan(sum(v for k, v in budgets.items() if source in (None, k)))
            if table.key == "weihai_2024_a2":
                total += city_donors[item.code]
            assert total == city[table.key][item.code], (table.key, item.code)


def city_inputs(run: Run, unit: str | None = None) -> dict[str, Decimal]:
    """Items still typed in (no record holds them): 托管班 (Qingpu), job fairs (Dalian)."""
    values = run.values(unit)
    return {
        "06A": values["qingpu_2017_aid"]["06A"],
        "06A+": values["qingpu_2017_aid"]["06A+"],
        "09A": values["dalian_2011"]["09A"],
    }


def test_report_figures_in_the_database_add_up_at_the_city(run: Run) -> None:
    """The figures the districts' statistics reports carry (set on the demo's own reports)."""
    before = city_inputs(run)
    own = {
        "WH-HC": {"06A": 12, "06A+": 30, "employment": {"09A": 5}},
        "WH-WD": {"06A": 7, "06A+": "18", "employment": {"09A": 4}},
    }
    with transaction(run.engine) as conn:
        for code, figures in own.items():
            updated = conn.execute(
                text(
                    "UPDATE report_submission SET figures = :f WHERE campaign_id = :c AND kind = 'statistics'"
                    " AND unit_id = (SELECT id FROM unit WHERE code = :u)"
                ),
                {"f": json.dumps(figures), "c": run.campaign, "u": code},
            )
            assert updated.rowcount == 1, code
    after = city_inputs(run)
    assert after == {
        "06A": before["06A"] + 19,
        "06A+": before["06A+"] + 48,
        "09A": before["09A"] + 9,
    }
    assert city_inputs(run, "WH-HC") == {"06A": 12, "06A+": 30, "09A": 5}
    assert city_inputs(run, "WH-RC") == {"06A": 0, "06A+": 0, "09A": 0}
    summed = report_figures(run.engine, run.campaign, "WH")
    assert after == {
        "06A": summed["06A"],
        "06A+": summed["06A+"],
        "09A": summed["employment.09A"],
    }


def test_report_figures_submitted_through_the_api_add_up_at_the_city(run: Run) -> None:
    """Filed again, a district's statistics report replaces its earlier figures (the latest
    revision counts); the city adds up each district's latest once. Filed on the cut-off day
    (a revision filed later counts only in no table: the tables stand at the cut-off)."""
    run.clock.set(dt.datetime.combine(CUTOFF, dt.time(17)))
    before = city_inputs(run)
    earlier = {code: city_inputs(run, code) for code in ("WH-HC", "WH-WD")}
    for code, figures in (("WH-HC", {"06A": 4, "06A+": 9}), ("WH-WD", {"06A": 6, "06A+": 11})):
        response = run.client.post(
            f"/api/campaigns/{run.campaign}/reports",
            json={"unit": code, "kind": "statistics", "note": "暑假托管班", "figures": figures},
            headers=run.headers(f"manager.{code.lower()}"),
        )
        assert response.status_code == 201, response.text
    after = city_inputs(run)
    replaced = {k: earlier["WH-HC"][k] + earlier["WH-WD"][k] for k in ("06A", "06A+")}
    assert (after["06A"], after["06A+"]) == (
        before["06A"] - replaced["06A"] + 10,
        before["06A+"] - replaced["06A+"] + 20,
    )
