"""The employment and work-study items of the statistics tables (Dalian 附件3 06–16, Qingpu
附件1 and 附件2 (07), Weihai 附件1 H and I) equal a recount of the registers done here in plain
SQL, for the city, a district and a grassroots union, on SQLite and PostgreSQL. The meanings are
written out again below from the notices' labels, not imported."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, select, text

from jinqiu.states import CaseState
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.employment import service
from jinqiu.workflow.employment.engine import RECORDS
from jinqiu.workflow.engine import fire
from jinqiu.workflow.statistics.compute import statistics
from jinqiu.workflow.units.models import Unit
from tests.factories import actor, case_in, weihai

unit_t = Unit.__table__  # type: ignore[attr-defined]
YEAR = 2024  # the Weihai campaign's

# (unit, graduation year, studies locally, events to its end, help given)
GRADUATES: list[tuple[str, int, bool, list[tuple[str, dict[str, Any]]], list[tuple[str, int]]]] = [
    ("WH-HC-001", 2024, True, [], [("plan", 0), ("training", 0)]),
    ("WH-HC-001", 2024, True, [("start_seeking", {})], []),
    ("WH-HC-001", 2024, False, [("employ", {"employer": "某厂"})], []),  # on its own
    (
        "WH-HC-001",
        2022,
        False,
        [("start_seeking", {}), ("interview", {}), ("employ", {"employer": "某公司"})],
        [("internship", 0), ("referral", 0), ("subsidy", 80_000)],
    ),
    ("WH-HC-002", 2023, True, [("start_seeking", {}), ("give_up", {})], [("loan", 5_000_000)]),
    ("WH-HC-002", 2024, True, [("continue_study", {"school": "某大学"})], [("certificate", 0)]),
    (
        "WH-WD-001",
        2021,
        False,
        [("start_seeking", {})],
        [("startup_guidance", 0), ("startup_training", 0), ("policy", 0), ("training", 0)],
    ),
    ("WH-WD-001", 2024, True, [("start_seeking", {}), ("interview", {})], [("subsidy", 50_050)]),
]
# (unit, employer, participants added, of whom removed)
POSTS = [
    ("WH-HC-001", "威海市图书馆", 2, 1),
    ("WH-HC-002", "威海市图书馆", 1, 0),
    ("WH-WD", "某社区", 3, 0),
]


def seed(engine: Engine, clock: ManualClock, campaign: int) -> None:
    for unit, year, local, events, help_given in GRADUATES:
        case_id = case_in(engine, clock, campaign, unit, CaseState.FOLLOW_UP)
        with transaction(engine) as conn:
            clerk = actor(conn, unit, "clerk")
            record = service.register(
                conn, campaign=_campaign(conn, campaign), case_id=case_id, graduation_year=year,
                school="某大学", major=None, studies_locally=local, actor=clerk, clock=clock,
            )  # fmt: skip
            for kind, fen in help_given:
                service.record_help(
                    conn, record, kind=kind, given_on=None, text="计划" if kind == "plan" else None,
                    amount_fen=fen or None, actor=clerk, clock=clock,
                )  # fmt: skip
            for event, data in events:
                version = conn.execute(
                    select(RECORDS.table.c.version).where(RECORDS.table.c.id == record)
                ).scalar_one()
                fire(
                    conn, RECORDS, subject_id=record, event=event, expected_version=version,
                    actor=clerk, clock=clock, opinion="说明", data=data,
                )  # fmt: skip
    for unit, employer, added, removed in POSTS:
        with transaction(engine) as conn:
            clerk = actor(conn, unit, "manager")
            post = service.open_post(
                conn, campaign_id=campaign, unit=_unit(conn, unit), title="岗位", employer=employer,
                kind="campus", hours_per_week=10, hourly_pay_fen=2000, actor=clerk, clock=clock,
            )  # fmt: skip
        people = [
            case_in(engine, clock, campaign, f"{unit}-001" if unit == "WH-WD" else unit,
                    CaseState.CLOSED)
            for _ in range(added)
        ]  # fmt: skip
        with transaction(engine) as conn:
            for case_id in people:
                service.add_participant(conn, post, case_id=case_id, actor=clerk, clock=clock)
            for case_id in people[:removed]:
                service.remove_participant(conn, post, case_id=case_id, actor=clerk, clock=clock)


def _campaign(conn: Connection, campaign: int) -> Any:
    return conn.execute(text("SELECT id, year FROM campaign WHERE id = :c"), {"c": campaign}).one()


def _unit(conn: Connection, code: str) -> Any:
    return conn.execute(select(unit_t).where(unit_t.c.code == code)).one()


def recount(conn: Connection, campaign: int, unit: str) -> dict[str, Any]:
    """The registers counted again, from their rows, as the notices' labels read."""
    where = "campaign_id = :c AND unit_id IN (SELECT id FROM unit WHERE path LIKE :p)"
    scope = {"c": campaign, "p": f"%/{unit}/%"}
    records = conn.execute(
        text(
            "SELECT r.graduation_year, r.studies_locally, r.state,"
            " (SELECT count(*) FROM employment_help h WHERE h.record_id = r.id) AS helped"
            f" FROM employment_record r WHERE {where}"
        ),
        scope,
    ).all()
    ongoing = {"registered", "seeking", "interviewing", "not_employed"}
    n: dict[str, Any] = Counter()
    for year, local, state, helped in records:
        n["graduates"] += 1
        n["fresh"] += year == YEAR
        n["previous"] += year < YEAR
        n["self_employed"] += state == "employed" and helped == 0
        n["helped_into_work"] += state == "employed" and helped > 0
        n["fresh_local_waiting"] += year == YEAR and bool(local) and state in ongoing
        n["previous_waiting"] += year < YEAR and state in ongoing
    for kind, pieces, fen in conn.execute(
        text(
            "SELECT kind, count(*), coalesce(sum(amount_fen), 0) FROM employment_help"
            f" WHERE record_id IN (SELECT id FROM employment_record WHERE {where}) GROUP BY kind"
        ),
        scope,
    ):
        n[kind] = pieces
        n[f"{kind}_fen"] = int(fen)
    posts, employers = conn.execute(
        text(f"SELECT count(*), count(DISTINCT employer) FROM work_study_post WHERE {where}"),
        scope,
    ).one()
    n["posts"], n["employers"] = posts, employers
    n["taking_part"] = conn.execute(
        text(
            "SELECT count(*) FROM work_study_participant WHERE active AND post_id IN"
            f" (SELECT id FROM work_study_post WHERE {where})"
        ),
        scope,
    ).scalar_one()
    n["loan_yuan"] = str((Decimal(n["loan_fen"]) / 100).quantize(Decimal("0.01")))
    n["subsidy_wan"] = str((Decimal(n["subsidy_fen"]) / 1_000_000).quantize(Decimal("0.0001")))
    return n


EXPECTED: dict[str, dict[str, str]] = {
    "dalian_2011": {
        "06A": "graduates", "06B": "fresh", "06C": "previous", "07A": "internship",
        "08A": "training", "08B": "certificate", "11A": "startup_guidance",
        "11B": "startup_training", "11C": "loan", "11C$": "loan_yuan", "12A": "policy",
        "13A": "helped_into_work", "14A": "subsidy", "14B": "subsidy_wan",
        "15A": "fresh_local_waiting", "16A": "previous_waiting",
    },
    "qingpu_2017_employment": {
        "01A": "graduates", "01B": "fresh", "01C": "previous", "01D": "self_employed",
        "02A": "internship", "03A": "training", "03B": "certificate",
        "06A": "startup_guidance", "06B": "startup_training", "06C": "loan", "06D": "loan_yuan",
        "07A": "policy", "08A": "helped_into_work", "09A": "subsidy", "09B": "subsidy_wan",
        "10A": "fresh_local_waiting", "11A": "previous_waiting",
    },
    "qingpu_2017_aid": {"07A": "employers", "07A+": "posts"},
    "weihai_2024_a1": {"H": "posts", "I": "taking_part"},
}  # fmt: skip


def test_the_employment_and_work_study_items_equal_a_recount_of_the_registers(
    db: Engine, clock: ManualClock
) -> None:
    _tree, campaign = weihai(db, clock)
    # After the payments, before the campaign's statistics cut-off (8/30): all of it counts
    # (tests/workflow/statistics/test_cutoff.py: what comes after it does not).
    clock.set(dt.datetime(2024, 8, 29, 9, 0))
    seed(db, clock, campaign)
    seen = Counter[str]()
    for unit in ("WH", "WH-HC", "WH-HC-002", "WH-WD"):
        with db.connect() as conn:
            tables = statistics(conn, campaign, _unit(conn, unit), list(EXPECTED))["tables"]
            expected = recount(conn, campaign, unit)
        values = {t["key"]: {i["code"]: i["value"] for i in t["items"]} for t in tables}
        for key, items in EXPECTED.items():
            for code, meaning in items.items():
                assert values[key][code] == expected[meaning], (unit, key, code, meaning)
                if expected[meaning] not in (0, "0.00", "0.0000"):
                    seen[meaning] += 1
        assert values["qingpu_2017_employment"]["01E"] == (
            expected["graduates"] - expected["self_employed"]
        )
        # Nothing counted from the registers is an `input` any more.
        kinds = {(t["key"], i["code"]): i["kind"] for t in tables for i in t["items"]}
        assert all(kinds[(key, code)] != "input" for key in EXPECTED for code in EXPECTED[key])
    # The seed makes every count non-zero somewhere (else the comparison proves little).
    assert {m for items in EXPECTED.values() for m in items.values()} <= set(seen)
    with db.connect() as conn:
        city = recount(conn, campaign, "WH")
    assert (city["graduates"], city["posts"], city["employers"], city["taking_part"]) == (
        8,
        3,
        2,
        5,
    )
