"""The campaign's statistics cut-off (Weihai 附件1: "数据统计截止日期为2024年8月30日") applies to
every count, each by its own date (both databases): for each kind of item, one recorded on the
cut-off day counts and one recorded after it does not.

The two moments are 8/30 23:30 and 8/31 00:30 in China: both fall on 8/30 in UTC, so a count that
compared UTC dates (or stopped at midnight UTC) would get one of them wrong."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, Engine, select, text

from jinqiu.states import CaseEvent, CaseState
from jinqiu.workflow.cases.engine import apply_event
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.donors.service import UnitFundIn, record_unit_fund
from jinqiu.workflow.employment import service
from jinqiu.workflow.employment.engine import RECORDS
from jinqiu.workflow.engine import fire
from jinqiu.workflow.statistics.compute import statistics
from jinqiu.workflow.statistics.reports import submit_report
from tests.factories import actor, case_in, case_row, weihai
from tests.workflow.donors.test_donor_funds import add_donor

ON_THE_DAY = dt.datetime(2024, 8, 30, 23, 30)  # Weihai's cut-off day, late evening in China
AFTER = dt.datetime(2024, 8, 31, 0, 30)  # the next day in China, still 8/30 in UTC
BEFORE = dt.datetime(2024, 8, 28, 9, 0)
ENTERING = {"student_changes": {"enrollment_year": 2024}}  # the campaign's year: 升学子女


def values(engine: Engine, campaign: int, key: str, unit: str = "WH") -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM unit WHERE code = :c"), {"c": unit}).one()
        (table,) = statistics(conn, campaign, row, [key])["tables"]
    return {i["code"]: i["value"] for i in table["items"]}


def at(clock: ManualClock, when: dt.datetime) -> ManualClock:
    clock.set(when)
    return clock


class TestCases:
    def test_a_case_paid_on_the_day_counts_and_one_paid_after_does_not(
        self, db: Engine, clock: ManualClock
    ) -> None:
        _tree, campaign = weihai(db, clock)
        case_in(db, at(clock, ON_THE_DAY), campaign, "WH-HC-001", CaseState.FOLLOW_UP)
        assert values(db, campaign, "weihai_2024_a1")["C"] == 1
        case_in(db, at(clock, AFTER), campaign, "WH-HC-001", CaseState.FOLLOW_UP)
        assert values(db, campaign, "weihai_2024_a1")["C"] == 1

    def test_a_case_registered_on_the_day_counts_and_one_registered_after_does_not(
        self, db: Engine, clock: ManualClock
    ) -> None:
        """Qingpu (03) 在档的…升学子女: the cases entered (registered) by the cut-off."""
        _tree, campaign = weihai(db, clock)
        case_in(db, at(clock, ON_THE_DAY), campaign, "WH-HC-001", CaseState.SURVEY, **ENTERING)
        assert values(db, campaign, "qingpu_2017_aid")["03A"] == 1
        case_in(db, at(clock, AFTER), campaign, "WH-HC-001", CaseState.SURVEY, **ENTERING)
        assert values(db, campaign, "qingpu_2017_aid")["03A"] == 1

    def test_a_case_rejected_after_the_day_still_counts_one_rejected_on_it_does_not(
        self, db: Engine, clock: ManualClock
    ) -> None:
        """(03) as the cases stood at the cut-off: an applicant then, whatever came after."""
        _tree, campaign = weihai(db, clock)
        cases = [
            case_in(db, at(clock, BEFORE), campaign, "WH-HC-001", CaseState.ARCHIVE_CHECK,
                    **ENTERING)
            for _ in range(2)
        ]  # fmt: skip
        for case_id, when in zip(cases, (ON_THE_DAY, AFTER), strict=True):
            with transaction(db) as conn:
                apply_event(
                    conn, case_id=case_id, event=CaseEvent.REJECT,
                    expected_version=case_row(db, case_id).version,
                    actor=actor(conn, "WH-HC", "reviewer"), clock=at(clock, when),
                    opinion="不符合条件",
                )  # fmt: skip
        assert values(db, campaign, "qingpu_2017_aid")["03A"] == 1


class TestRaised:
    def test_self_raised_money_recorded_on_the_day_counts_and_after_does_not(
        self, db: Engine, clock: ManualClock
    ) -> None:
        _tree, campaign = weihai(db, clock)
        base = values(db, campaign, "weihai_2024_a1")["A3"]

        def record(when: dt.datetime, amount: str) -> None:
            with transaction(db) as conn:
                record_unit_fund(
                    conn, campaign, UnitFundIn(unit="WH-HC", source="union", amount=amount),  # type: ignore[arg-type]
                    actor=actor(conn, "WH-HC", "manager"), clock=at(clock, when),
                )  # fmt: skip

        record(ON_THE_DAY, "100")
        on_the_day = values(db, campaign, "weihai_2024_a1")["A3"]
        record(AFTER, "5000")
        assert values(db, campaign, "weihai_2024_a1")["A3"] == on_the_day
        assert on_the_day != base  # the 100 yuan of the day is in it
        assert values(db, campaign, "weihai_2024_a1", "WH-HC")["A3"] == "0.0100"

    def test_a_donor_brought_in_on_the_day_counts_and_one_after_does_not(
        self, db: Engine, clock: ManualClock
    ) -> None:
        _tree, campaign = weihai(db, clock)
        add_donor(db, at(clock, ON_THE_DAY), campaign, name="当天的爱心企业", unit="WH-HC")
        add_donor(db, at(clock, AFTER), campaign, name="次日的爱心企业", unit="WH-HC")
        with db.connect() as conn:
            row = conn.execute(text("SELECT * FROM unit WHERE code = 'WH-HC'")).one()
            (annex,) = statistics(conn, campaign, row, ["weihai_2024_a2"])["tables"]
        assert [r["name"] for r in annex["rows"]] == ["当天的爱心企业"]
        totals = {i["code"]: i["value"] for i in annex["items"]}
        assert (totals["S1"], totals["S3"]) == ("10000.00", 1)
        assert values(db, campaign, "weihai_2024_a1", "WH-HC")["A2"] == "1.0000"


class TestReports:
    def file(self, engine: Engine, clock: ManualClock, campaign: int, n: int) -> None:
        with transaction(engine) as conn:
            submit_report(
                conn, campaign_id=campaign, unit_code="WH-HC", kind="statistics", note=None,
                actor=actor(conn, "WH-HC", "manager"), clock=clock, figures={"06A": n},
            )  # fmt: skip

    def test_the_revision_filed_on_the_day_counts_and_a_later_one_does_not(
        self, db: Engine, clock: ManualClock
    ) -> None:
        _tree, campaign = weihai(db, clock)
        self.file(db, at(clock, BEFORE), campaign, 3)
        self.file(db, at(clock, ON_THE_DAY), campaign, 5)  # revision 2 replaces revision 1
        assert values(db, campaign, "qingpu_2017_aid")["06A"] == 5
        self.file(db, at(clock, AFTER), campaign, 9)  # revision 3: after the cut-off
        assert values(db, campaign, "qingpu_2017_aid")["06A"] == 5

    def test_a_report_first_filed_after_the_day_is_not_counted(
        self, db: Engine, clock: ManualClock
    ) -> None:
        _tree, campaign = weihai(db, clock)
        self.file(db, at(clock, AFTER), campaign, 7)
        assert values(db, campaign, "qingpu_2017_aid")["06A"] == 0


def _register(conn: Connection, campaign: int, case_id: int, clock: ManualClock) -> int:
    year = conn.execute(text("SELECT id, year FROM campaign WHERE id = :c"), {"c": campaign}).one()
    return service.register(
        conn, campaign=year, case_id=case_id, graduation_year=2024, school="某大学", major=None,
        studies_locally=True, actor=actor(conn, "WH-HC-001", "clerk"), clock=clock,
    )  # fmt: skip


def _employ(conn: Connection, record: int, clock: ManualClock) -> None:
    version = conn.execute(
        select(RECORDS.table.c.version).where(RECORDS.table.c.id == record)
    ).scalar_one()
    fire(
        conn, RECORDS, subject_id=record, event="employ", expected_version=version,
        actor=actor(conn, "WH-HC-001", "clerk"), clock=clock, opinion="说明",
        data={"employer": "某厂"},
    )  # fmt: skip


class TestRegisters:
    """Dalian 附件3 (06)–(16) and Weihai 附件1 H, I from the registers."""

    def paid(self, db: Engine, clock: ManualClock, campaign: int) -> int:
        return case_in(db, at(clock, BEFORE), campaign, "WH-HC-001", CaseState.FOLLOW_UP)

    def test_a_graduate_registered_on_the_day_counts_and_one_after_does_not(
        self, db: Engine, clock: ManualClock
    ) -> None:
        _tree, campaign = weihai(db, clock)
        first, second = self.paid(db, clock, campaign), self.paid(db, clock, campaign)
        with transaction(db) as conn:
            _register(conn, campaign, first, at(clock, ON_THE_DAY))
        with transaction(db) as conn:
            _register(conn, campaign, second, at(clock, AFTER))
        assert values(db, campaign, "dalian_2011")["06A"] == 1

    def test_help_given_on_the_day_counts_and_help_after_does_not(
        self, db: Engine, clock: ManualClock
    ) -> None:
        _tree, campaign = weihai(db, clock)
        case_id = self.paid(db, clock, campaign)
        with transaction(db) as conn:
            record = _register(conn, campaign, case_id, at(clock, BEFORE))
        for when in (ON_THE_DAY, AFTER):
            with transaction(db) as conn:
                service.record_help(
                    conn, record, kind="training", given_on=None, text=None, amount_fen=None,
                    actor=actor(conn, "WH-HC-001", "clerk"), clock=at(clock, when),
                )  # fmt: skip
        assert values(db, campaign, "dalian_2011")["08A"] == 1

    def test_a_graduate_employed_after_the_day_is_still_seeking_at_the_cutoff(
        self, db: Engine, clock: ManualClock
    ) -> None:
        """(13) 帮助实现就业 and (15) 尚未签约 as the registers stood at the cut-off."""
        _tree, campaign = weihai(db, clock)
        on_the_day, after = self.paid(db, clock, campaign), self.paid(db, clock, campaign)
        with transaction(db) as conn:
            records = [_register(conn, campaign, c, at(clock, BEFORE)) for c in (on_the_day, after)]
            for record in records:
                service.record_help(
                    conn, record, kind="training", given_on=None, text=None, amount_fen=None,
                    actor=actor(conn, "WH-HC-001", "clerk"), clock=clock,
                )  # fmt: skip
        with transaction(db) as conn:
            _employ(conn, records[0], at(clock, ON_THE_DAY))
        with transaction(db) as conn:
            _employ(conn, records[1], at(clock, AFTER))
        table = values(db, campaign, "dalian_2011")
        assert (table["13A"], table["15A"]) == (1, 1)

    def test_posts_and_participants_count_as_they_stood_at_the_end_of_the_day(
        self, db: Engine, clock: ManualClock
    ) -> None:
        """H 勤工俭学岗位 (opened by then), I 参加 (added by then, not removed by then)."""
        _tree, campaign = weihai(db, clock)
        students = [
            case_in(db, at(clock, BEFORE), campaign, "WH-HC-001", CaseState.CLOSED)
            for _ in range(3)
        ]
        posts = []
        for when in (ON_THE_DAY, AFTER):
            with transaction(db) as conn:
                unit = conn.execute(text("SELECT * FROM unit WHERE code = 'WH-HC'")).one()
                posts.append(
                    service.open_post(
                        conn,
                        campaign_id=campaign,
                        unit=unit,
                        title="岗位",
                        employer="图书馆",
                        kind="campus",
                        hours_per_week=10,
                        hourly_pay_fen=2000,
                        actor=actor(conn, "WH-HC", "manager"),
                        clock=at(clock, when),
                    )
                )
        manager = "WH-HC"

        def change(when: dt.datetime, what: Any, post: int, case_id: int) -> None:
            with transaction(db) as conn:
                what(conn, post, case_id=case_id, actor=actor(conn, manager, "manager"),
                     clock=at(clock, when))  # fmt: skip

        change(ON_THE_DAY, service.add_participant, posts[0], students[0])  # counts
        change(ON_THE_DAY, service.add_participant, posts[0], students[1])
        change(AFTER, service.remove_participant, posts[0], students[1])  # removed later: counts
        change(ON_THE_DAY, service.add_participant, posts[0], students[2])
        change(ON_THE_DAY, service.remove_participant, posts[0], students[2])  # gone by then
        change(AFTER, service.add_participant, posts[1], students[2])  # on a later post
        table = values(db, campaign, "weihai_2024_a1")
        assert (table["H"], table["I"]) == (1, 2)
