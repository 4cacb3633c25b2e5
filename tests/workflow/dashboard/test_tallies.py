"""The dashboard's pre-aggregated counts on both databases (migration 0029): reminders sent per
(campaign, ancestor unit), reports filed per (campaign, kind, ancestor unit, level) and units per
(ancestor unit, level) equal a recount of the ledger, the reports and the units after sweeps,
report filings (and revisions), units created, and case transitions; drift is found and
repaired; the dashboard shows the same figures as a count over the rows would; concurrent
writers on PostgreSQL keep them exact."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select

from jinqiu.workflow.cases.counters import counter_differences
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.dashboard.service import DashboardQuery, dashboard
from jinqiu.workflow.dashboard.tallies import repair_tallies, tally_differences
from jinqiu.workflow.db import snapshot, transaction
from jinqiu.workflow.deadlines.models import ReminderLedger
from jinqiu.workflow.deadlines.reminder_counts import ReminderCount
from jinqiu.workflow.deadlines.sweep import sweep
from jinqiu.workflow.statistics.reports import submit_report
from jinqiu.workflow.units.counts import UnitCount, levels_in_subtree
from jinqiu.workflow.units.models import Unit, UnitLevel
from jinqiu.workflow.units.service import UnitCreate, create_unit
from tests.factories import actor_of, new_case, rows_not_naming_their_parent, weihai_by_level

ledger_t = ReminderLedger.__table__  # type: ignore[attr-defined]
reminder_count_t = ReminderCount.__table__  # type: ignore[attr-defined]
unit_count_t = UnitCount.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
BASE_URL = "https://jinqiu.example.org"


def exact(db: Engine) -> None:
    with snapshot(db) as conn:
        assert [d.describe() for d in tally_differences(conn)] == []
        assert counter_differences(conn) == []
        assert rows_not_naming_their_parent(conn) == []


def board(db: Engine, campaign: int, code: str, today: dt.date) -> dict[str, Any]:
    who = actor_of(db, "WH", "manager")
    with db.connect() as conn:
        return dashboard(conn, DashboardQuery(campaign, code), who, today=today)


def ledger_per_child(db: Engine, campaign: int, code: str) -> dict[str, int]:
    """The reminders of each child's subtree, counted from the ledger."""
    with db.connect() as conn:
        parent = conn.execute(select(unit_t).where(unit_t.c.code == code)).one()
        children = conn.execute(
            select(unit_t.c.code, unit_t.c.path).where(unit_t.c.parent_id == parent.id)
        ).all()
        out = {}
        for child in children:
            out[child.code] = conn.execute(
                select(func.count())
                .select_from(ledger_t.join(unit_t, unit_t.c.id == ledger_t.c.unit_id))
                .where(ledger_t.c.campaign_id == campaign, unit_t.c.path.startswith(child.path))
            ).scalar_one()
        return out


def file(
    db: Engine, clock: ManualClock, campaign: int, code: str, kind: str = "statistics"
) -> None:
    with transaction(db) as conn:
        submit_report(
            conn,
            campaign_id=campaign,
            unit_code=code,
            kind=kind,
            note=None,
            actor=actor_of(db, code, "manager"),
            clock=clock,
        )


def test_counts_follow_sweeps_reports_units_and_transitions(db: Engine) -> None:
    clock = ManualClock(dt.datetime(2024, 7, 20, 9))
    _tree, campaign = weihai_by_level(db, clock)
    exact(db)  # the demo tree, inserted around create_unit, is counted
    with db.connect() as conn:
        assert levels_in_subtree(conn, "WH-HC") == {"district": 1, "grassroots": 3}
    for code in ("WH-HC-001", "WH-HC-002", "WH-WD-001"):
        new_case(db, clock, campaign, code)  # in survey: the grassroots unions owe their material

    # Sweeps: T-1 of the survey deadline, then T-0; the same day again claims nothing new.
    for day in (30, 31, 31):
        clock.set(dt.datetime(2024, 7, day, 8))
        sweep(db, clock, base_url=BASE_URL)
        exact(db)
    shown = board(db, campaign, "WH", dt.date(2024, 7, 31))
    sent = {u["code"]: u["reminders_sent"] for u in shown["units"]}
    assert sent == ledger_per_child(db, campaign, "WH")
    assert sent["WH-HC"] == 4 and sent["WH-WD"] == 2  # two unions × T-1, T-0; one union × both
    district = board(db, campaign, "WH-HC", dt.date(2024, 7, 31))
    assert {u["code"]: u["reminders_sent"] for u in district["units"]} == ledger_per_child(
        db, campaign, "WH-HC"
    )

    # Reports: a first filing counts, a revision does not; the deadline's units owing follow.
    def owing(code: str) -> int:
        (item,) = [
            d
            for d in board(db, campaign, code, dt.date(2024, 8, 1))["deadlines"]
            if d.get("report") == "statistics"
        ]
        return int(item["units_owing"])

    assert owing("WH") == 6 and owing("WH-HC") == 1
    file(db, clock, campaign, "WH-HC")
    exact(db)
    assert owing("WH") == 5 and owing("WH-HC") == 0
    file(db, clock, campaign, "WH-HC")  # revision 2
    file(db, clock, campaign, "WH-HC-001")  # a grassroots union's filing owes nothing to districts
    exact(db)
    assert owing("WH") == 5

    # A unit created under the city through the service: a new district owing its report.
    with transaction(db) as conn:
        create_unit(
            conn, UnitCreate(code="WH-XQ", name="新区总工会", level=UnitLevel.DISTRICT, parent="WH")
        )
        create_unit(
            conn,
            UnitCreate(
                code="WH-XQ-001", name="新区某公司工会", level=UnitLevel.GRASSROOTS, parent="WH-XQ"
            ),
        )
    exact(db)
    assert owing("WH") == 6 and owing("WH-XQ") == 1
    with db.connect() as conn:
        assert levels_in_subtree(conn, "WH-XQ") == {"district": 1, "grassroots": 1}


def test_drift_is_found_and_repaired(db: Engine) -> None:
    clock = ManualClock(dt.datetime(2024, 7, 30, 8))
    _tree, campaign = weihai_by_level(db, clock)
    new_case(db, clock, campaign, "WH-HC-001")
    sweep(db, clock, base_url=BASE_URL)
    file(db, clock, campaign, "WH-WD")
    exact(db)
    with transaction(db) as conn:
        conn.execute(delete(reminder_count_t).where(reminder_count_t.c.unit_code == "WH-HC"))
        conn.execute(delete(unit_count_t).where(unit_count_t.c.unit_code == "WH-RC"))
    with snapshot(db) as conn:
        found = [d.describe() for d in tally_differences(conn, campaign)]
    assert found == [
        f"reminders {campaign}, WH-HC: counter 0, recount 1",
        "units WH-RC, district: counter 0, recount 1",
        "units WH-RC, grassroots: counter 0, recount 3",
    ]
    with transaction(db) as conn:
        assert [d.describe() for d in repair_tallies(conn, campaign)] == found
    exact(db)
    # Repaired counts go on counting.
    clock.set(dt.datetime(2024, 7, 31, 8))
    sweep(db, clock, base_url=BASE_URL)
    exact(db)


@pytest.mark.postgres
def test_concurrent_writers_keep_the_counts_exact(pg_engine: Engine) -> None:
    """Threads at once: sweeps racing for the same reminders, units created under one parent,
    and the districts filing their reports (twice each, revisions racing)."""
    db = pg_engine
    from tests.conftest import _wipe

    _wipe(db)
    clock = ManualClock(dt.datetime(2024, 7, 31, 8))
    _tree, campaign = weihai_by_level(db, clock)
    for code in ("WH-HC-001", "WH-HC-002", "WH-WD-001", "WH-RC-001"):
        new_case(db, clock, campaign, code)
    districts = ("WH-HC", "WH-WD", "WH-RC", "WH-RS", "WH-GQ", "WH-SZ")
    actors = {code: actor_of(db, code, "manager") for code in districts}
    errors: list[BaseException] = []
    barrier = threading.Barrier(6 + 3 + 3)

    def guarded(work: Any) -> Any:
        def run(*args: Any) -> None:
            try:
                barrier.wait(timeout=30)
                work(*args)
            except BaseException as error:
                errors.append(error)

        return run

    @guarded
    def report(code: str) -> None:
        for _ in range(2):
            with transaction(db) as conn:
                submit_report(
                    conn,
                    campaign_id=campaign,
                    unit_code=code,
                    kind="statistics",
                    note=None,
                    actor=actors[code],
                    clock=clock,
                )

    @guarded
    def add_units(k: int) -> None:
        for i in range(3):
            with transaction(db) as conn:
                create_unit(
                    conn,
                    UnitCreate(
                        code=f"WH-HC-9{k}{i}",
                        name=f"新建工会{k}{i}",
                        level=UnitLevel.GRASSROOTS,
                        parent="WH-HC",
                    ),
                )

    @guarded
    def sweeping() -> None:
        sweep(db, ManualClock(dt.datetime(2024, 7, 31, 8)), base_url=BASE_URL)

    threads = [threading.Thread(target=report, args=(c,)) for c in districts]
    threads += [threading.Thread(target=add_units, args=(k,)) for k in range(3)]
    threads += [threading.Thread(target=sweeping) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    exact(db)
    with db.connect() as conn:
        assert levels_in_subtree(conn, "WH-HC")["grassroots"] == 3 + 9
        assert conn.execute(select(func.count()).select_from(ledger_t)).scalar_one() == 4
    (item,) = [
        d
        for d in board(db, campaign, "WH", dt.date(2024, 7, 31))["deadlines"]
        if d.get("report") == "statistics"
    ]
    assert item["units_owing"] == 0


def test_units_owing_for_sets_by_level_parent_and_list_equal_a_count(db: Engine) -> None:
    """A set given by levels alone reads the counts; by parent or listed units it is counted
    from the units: either way the figure a count over the units gives."""
    deadlines = [
        {
            "key": key,
            "title": "报送统计表",
            "due": "2024-08-30",
            "responsible": responsible,
            "done_when": {"report_submitted": "statistics"},
        }
        for key, responsible in (
            ("by_level", {"levels": ["district", "industry"], "label": "各区市总工会"}),
            ("by_parent", {"parent": "WH", "levels": ["district"], "label": "市直各单位"}),
            ("listed", {"units": ["WH-HC", "WH-WD", "WH-HC-001"], "label": "三个单位"}),
        )
    ]
    clock = ManualClock(dt.datetime(2024, 7, 20, 9))
    _tree, campaign = weihai_by_level(db, clock, deadlines=deadlines)
    for code in ("WH-HC", "WH-HC-001", "WH-RC"):
        file(db, clock, campaign, code)
    exact(db)

    def counted(code: str, responsible: dict[str, Any]) -> int:
        with db.connect() as conn:
            path = conn.execute(select(unit_t.c.path).where(unit_t.c.code == code)).scalar_one()
            units = conn.execute(select(unit_t).where(unit_t.c.path.startswith(path))).all()
        filed = {"WH-HC", "WH-HC-001", "WH-RC"}
        return sum(
            1
            for u in units
            if u.code not in filed
            and ("levels" not in responsible or u.level in responsible["levels"])
            and ("units" not in responsible or u.code in responsible["units"])
            and ("parent" not in responsible or path_parent(u.path) == responsible["parent"])
        )

    for code in ("WH", "WH-HC", "WH-WD"):
        shown = {
            d["key"]: d["units_owing"]
            for d in board(db, campaign, code, dt.date(2024, 8, 1))["deadlines"]
        }
        assert shown == {d["key"]: counted(code, d["responsible"]) for d in deadlines}


def path_parent(path: str) -> str | None:
    codes = [c for c in path.split("/") if c]
    return codes[-2] if len(codes) > 1 else None
