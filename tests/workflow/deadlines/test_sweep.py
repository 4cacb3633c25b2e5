"""The sweep on both databases: who is reminded of what, once; escalation to the parent unit;
reports stopping district reminders; publicity ending (and held by an open objection)."""

from __future__ import annotations

import datetime as dt
import gc
from collections import Counter
from typing import Any

from sqlalchemy import Engine, select, update

from jinqiu.notifications.models import InboxMessage, OutboxMessage
from jinqiu.workflow.cases.engine import apply_event
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.deadlines import sweep as sweep_module
from jinqiu.workflow.deadlines.models import ReminderLedger
from jinqiu.workflow.deadlines.sweep import SweepReport, sweep
from jinqiu.workflow.roles import SCHEDULER, Actor
from jinqiu.workflow.statistics.reports import submit_report
from jinqiu.workflow.units.models import Unit
from tests.factories import actor_of, case_row, new_case, weihai_by_level

ledger_t = ReminderLedger.__table__  # type: ignore[attr-defined]
outbox_t = OutboxMessage.__table__  # type: ignore[attr-defined]
inbox_t = InboxMessage.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]

BASE_URL = "https://jinqiu.example.org"
SURVEY_TITLE = "报送新增困难职工档案申报材料和《困难职工子女金秋助学情况摸底表》"
STATS_TITLE = "报送活动总结和统计表"
DISTRICTS = ("WH-HC", "WH-WD", "WH-RC", "WH-RS", "WH-GQ", "WH-SZ")


def at(clock: ManualClock, month: int, day: int, hour: int = 8) -> ManualClock:
    clock.set(dt.datetime(2024, month, day, hour))
    return clock


def run(db: Engine, clock: ManualClock) -> SweepReport:
    return sweep(db, clock, base_url=BASE_URL)


def rows(db: Engine, table: Any, *order: Any) -> list[Any]:
    with db.connect() as conn:
        return list(conn.execute(select(table).order_by(*(order or (table.c.id,)))))


def unit(db: Engine, code: str) -> Any:
    with db.connect() as conn:
        return conn.execute(select(unit_t).where(unit_t.c.code == code)).one()


def fire(db: Engine, clock: ManualClock, case_id: int, event: str, who: Actor, **kw: Any) -> None:
    with transaction(db) as conn:
        apply_event(
            conn,
            case_id=case_id,
            event=event,
            expected_version=case_row(db, case_id).version,
            actor=who,
            clock=clock,
            **kw,
        )


def emails(db: Engine) -> dict[str, list[Any]]:
    """Outbox e-mails by recipient."""
    out: dict[str, list[Any]] = {}
    for r in rows(db, outbox_t):
        assert r.channel == "email"
        out.setdefault(r.recipient, []).append(r)
    return out


class TestWhoIsReminded:
    def test_only_units_with_work_pending_get_a_reminder(
        self, db: Engine, clock: ManualClock
    ) -> None:
        _tree, campaign = weihai_by_level(db, clock)
        for code in ("WH-HC-001", "WH-HC-001", "WH-WD-002"):
            new_case(db, clock, campaign, code)
        done = new_case(db, clock, campaign, "WH-HC-002")  # submitted: nothing left in survey
        fire(db, clock, done, "submit", actor_of(db, "WH-HC-002", "clerk"))

        report = run(db, at(clock, 7, 26))  # Fri: T-3 for Wed 7/31

        assert sorted(
            (r.unit_code, r.kind, r.occurrence, r.pending_total) for r in report.reminders
        ) == [("WH-HC-001", "before", 3, 2), ("WH-WD-002", "before", 3, 1)]
        assert sorted(emails(db)) == ["wh-hc-001@example.org", "wh-wd-002@example.org"]
        assert sorted(r.unit_code for r in rows(db, inbox_t)) == ["WH-HC-001", "WH-WD-002"]
        ledger = rows(db, ledger_t)
        assert sorted(
            (r.unit_id, r.notified_unit_id, r.kind, r.occurrence, r.pending_total) for r in ledger
        ) == sorted(
            [
                (unit(db, "WH-HC-001").id, unit(db, "WH-HC-001").id, "before", 3, 2),
                (unit(db, "WH-WD-002").id, unit(db, "WH-WD-002").id, "before", 3, 1),
            ]
        )

    def test_nothing_pending_anywhere_means_no_message_at_all(
        self, db: Engine, clock: ManualClock
    ) -> None:
        weihai_by_level(db, clock)  # no cases; the districts' report is not due until 8/30
        for day in (26, 30, 31):
            report = run(db, at(clock, 7, day))
            assert report.reminders == []
        assert (rows(db, ledger_t), rows(db, outbox_t), rows(db, inbox_t)) == ([], [], [])

    def test_before_t_minus_3_nothing_is_sent(self, db: Engine, clock: ManualClock) -> None:
        _tree, campaign = weihai_by_level(db, clock)
        new_case(db, clock, campaign, "WH-HC-001")
        assert run(db, at(clock, 7, 25, 18)).reminders == []
        assert rows(db, outbox_t) == []


class TestWhatTheMessageSays:
    def test_subject_and_bodies_name_unit_deadline_due_date_counts_and_link(
        self, db: Engine, clock: ManualClock
    ) -> None:
        _tree, campaign = weihai_by_level(db, clock)
        for _ in range(3):
            new_case(db, clock, campaign, "WH-WD-001")
        run(db, at(clock, 7, 30))  # T-1
        name = unit(db, "WH-WD-001").name
        [mail] = emails(db)["wh-wd-001@example.org"]
        assert name in mail.subject and SURVEY_TITLE in mail.subject
        assert "还剩1个工作日" in mail.subject
        link = f"{BASE_URL}/queue?campaign={campaign}&unit=WH-WD-001"
        for body in (mail.body_text,):
            assert name in body and SURVEY_TITLE in body and "2024-07-31" in body
            assert "摸底申报：3件" in body
            assert link in body
        html = mail.body_html
        assert name in html and "2024-07-31" in html and SURVEY_TITLE in html
        assert '>摸底申报</td><td style="text-align:right;">3</td>' in html
        assert link.replace("&", "&amp;") in html
        [item] = rows(db, inbox_t)
        assert (item.unit_code, item.title, item.link) == ("WH-WD-001", mail.subject, link)
        assert "摸底申报：3件" in item.body

    def test_pending_counts_are_given_per_state(self, db: Engine, clock: ManualClock) -> None:
        # A district deadline covering two states: the district is told how many cases of its
        # grassroots unions sit in each.
        review = {
            "key": "review",
            "title": "完成档案核查和公示",
            "due": "2024-08-22",
            "responsible_level": "district",
            "done_when": {"no_cases_in": ["archive_check", "publicity"]},
        }
        _tree, campaign = weihai_by_level(db, clock, deadlines=[review])
        hc_clerk1, hc_clerk2 = (
            actor_of(db, "WH-HC-001", "clerk"),
            actor_of(db, "WH-HC-002", "clerk"),
        )
        cases = [new_case(db, clock, campaign, "WH-HC-001") for _ in range(3)]
        cases.append(new_case(db, clock, campaign, "WH-HC-002"))
        new_case(db, clock, campaign, "WH-HC-003")  # still in survey: not this deadline's business
        for case_id in cases[:3]:
            fire(db, clock, case_id, "submit", hc_clerk1)
        fire(db, clock, cases[3], "submit", hc_clerk2)
        at(clock, 8, 15, 10)  # publicity runs until 8/22
        fire(db, clock, cases[0], "verify", actor_of(db, "WH-HC", "reviewer"), opinion="核查无误")
        fire(db, clock, cases[0], "publish", SCHEDULER)
        run(db, at(clock, 8, 19))  # Mon: T-3 for Thu 8/22
        [mail] = emails(db)["wh-hc@example.org"]
        assert set(emails(db)) == {"wh-hc@example.org"}
        assert "档案核查：3件" in mail.body_text and "公示：1件" in mail.body_text
        assert "待办案件共4件" in mail.body_text
        assert '>档案核查</td><td style="text-align:right;">3</td>' in mail.body_html
        assert '>公示</td><td style="text-align:right;">1</td>' in mail.body_html
        [entry] = rows(db, ledger_t)
        assert (entry.unit_id, entry.pending_total) == (unit(db, "WH-HC").id, 4)


class TestOncePerReminder:
    def test_a_second_sweep_the_same_day_sends_nothing_new(
        self, db: Engine, clock: ManualClock
    ) -> None:
        _tree, campaign = weihai_by_level(db, clock)
        for code in ("WH-HC-001", "WH-RC-003", "WH-SZ-002"):
            new_case(db, clock, campaign, code)
        first = run(db, at(clock, 7, 26, 8))
        before = (rows(db, ledger_t), rows(db, outbox_t), rows(db, inbox_t))
        second = run(db, at(clock, 7, 26, 17))
        third = run(db, at(clock, 7, 29, 9))  # Mon is T-2: T-3 is still the latest, already sent
        assert len(first.reminders) == 3
        assert (second.reminders, second.already_sent) == ([], 3)
        assert (third.reminders, third.already_sent) == ([], 3)
        assert (rows(db, ledger_t), rows(db, outbox_t), rows(db, inbox_t)) == before

    def test_each_reminder_day_sends_one_new_message(self, db: Engine, clock: ManualClock) -> None:
        _tree, campaign = weihai_by_level(db, clock)
        new_case(db, clock, campaign, "WH-HC-001")
        for day in (26, 27, 29, 30, 30, 31, 31):
            run(db, at(clock, 7, day))
        subjects = [m.subject for m in emails(db)["wh-hc-001@example.org"]]
        assert [s.split("】")[0] + "】" for s in subjects] == [
            "【还剩3个工作日】",
            "【还剩1个工作日】",
            "【今日截止】",
        ]

    def test_catch_up_after_a_week_sends_only_the_latest_occurrence(
        self, db: Engine, clock: ManualClock
    ) -> None:
        _tree, campaign = weihai_by_level(db, clock)
        for code in ("WH-HC-001", "WH-WD-003"):
            new_case(db, clock, campaign, code)
        assert run(db, at(clock, 7, 22)).reminders == []  # then a week of downtime
        caught_up = run(db, at(clock, 7, 31))
        assert sorted((r.unit_code, r.kind, r.occurrence) for r in caught_up.reminders) == [
            ("WH-HC-001", "before", 0),
            ("WH-WD-003", "before", 0),
        ]
        assert run(db, at(clock, 8, 9)).reminders  # another week down: 8/1..8/9 = 7 overdue
        ledger = rows(db, ledger_t)
        by = Counter((r.unit_id, r.kind) for r in ledger)
        assert set(by.values()) == {1}  # one per kind per unit: nothing doubled
        assert sorted((r.kind, r.occurrence) for r in ledger) == [
            ("before", 0),
            ("before", 0),
            ("escalation", 7),
            ("escalation", 7),
            ("overdue", 7),
            ("overdue", 7),
        ]
        assert len(rows(db, outbox_t)) == len(ledger) == len(rows(db, inbox_t))
        again = run(db, at(clock, 8, 9, 18))
        assert (again.reminders, again.already_sent) == ([], 4)


class TestReportsAndEscalation:
    def test_a_submitted_report_stops_that_districts_reminders(
        self, db: Engine, clock: ManualClock
    ) -> None:
        _tree, campaign = weihai_by_level(db, clock)
        first = run(db, at(clock, 8, 27))  # Tue: T-3 for Fri 8/30
        assert sorted(r.unit_code for r in first.reminders) == sorted(DISTRICTS)
        assert all(r.deadline_key == "statistics_report" for r in first.reminders)
        mail = emails(db)["wh-hc@example.org"][0]
        assert "尚未报送活动总结和统计表" in mail.body_text and STATS_TITLE in mail.subject
        with transaction(db) as conn:
            submit_report(
                conn,
                campaign_id=campaign,
                unit_code="WH-HC",
                kind="statistics",
                note=None,
                actor=actor_of(db, "WH-HC", "manager"),
                clock=clock,
            )
            submit_report(
                conn,
                campaign_id=campaign,
                unit_code="WH-SZ",
                kind="interim",
                note=None,
                actor=actor_of(db, "WH-SZ", "manager"),
                clock=clock,
            )
        later = run(db, at(clock, 8, 29))  # T-1
        assert sorted(r.unit_code for r in later.reminders) == sorted(set(DISTRICTS) - {"WH-HC"})
        overdue = run(db, at(clock, 9, 3))  # 2 working days late: overdue + escalation
        assert "WH-HC" not in {r.unit_code for r in overdue.reminders}
        assert len(emails(db)["wh-hc@example.org"]) == 1
        assert len(emails(db)["wh-sz@example.org"]) == 3  # the wrong report kind changes nothing

    def test_escalation_goes_to_the_parent_units_contact(
        self, db: Engine, clock: ManualClock
    ) -> None:
        _tree, campaign = weihai_by_level(db, clock)
        new_case(db, clock, campaign, "WH-RS-002")
        new_case(db, clock, campaign, "WH-RS-002")
        one = run(db, at(clock, 8, 1))
        assert [(r.kind, r.occurrence, r.notified_unit_code) for r in one.reminders] == [
            ("overdue", 1, "WH-RS-002")
        ]
        two = run(db, at(clock, 8, 2))
        assert sorted(
            (r.kind, r.occurrence, r.unit_code, r.notified_unit_code) for r in two.reminders
        ) == [("escalation", 2, "WH-RS-002", "WH-RS"), ("overdue", 2, "WH-RS-002", "WH-RS-002")]
        [escalated] = emails(db)["wh-rs@example.org"]
        late = unit(db, "WH-RS-002").name
        assert "督办" in escalated.subject and late in escalated.subject
        assert "逾期2个工作日" in escalated.subject
        assert late in escalated.body_text and "2024-07-31" in escalated.body_text
        assert "摸底申报：2件" in escalated.body_text
        assert escalated.body_text.startswith(unit(db, "WH-RS").contact_name)
        [inbox] = [r for r in rows(db, inbox_t) if r.unit_code == "WH-RS"]
        assert inbox.title == escalated.subject
        [entry] = [r for r in rows(db, ledger_t) if r.kind == "escalation"]
        assert (entry.unit_id, entry.notified_unit_id) == (
            unit(db, "WH-RS-002").id,
            unit(db, "WH-RS").id,
        )
        assert len(emails(db)["wh-rs-002@example.org"]) == 2  # overdue 1 and 2, no T-n (missed)

    def test_escalation_with_no_parent_contact_still_lands_in_the_parents_inbox(
        self, db: Engine, clock: ManualClock
    ) -> None:
        _tree, campaign = weihai_by_level(db, clock)
        new_case(db, clock, campaign, "WH-GQ-001")
        with transaction(db) as conn:
            conn.execute(update(unit_t).where(unit_t.c.code == "WH-GQ").values(contact_email=None))
        run(db, at(clock, 8, 2))
        assert "wh-gq@example.org" not in emails(db)
        assert [r.unit_code for r in rows(db, inbox_t)].count("WH-GQ") == 1


class TestPublicity:
    """Cases in publicity with a period of their own and on no list — as cases entered
    publicity before lists existed (migration 0012): the sweep still ends them case by case.
    (Lists: tests/api/test_publicity_lists.py.)"""

    def _in_publicity(
        self, db: Engine, clock: ManualClock, campaign: int, code: str, verified: dt.datetime
    ) -> int:
        case_id = new_case(db, clock, campaign, code)
        fire(db, clock, case_id, "submit", actor_of(db, code, "clerk"))
        saved = clock.now()
        clock.set(verified)
        district = code.rsplit("-", 1)[0]
        fire(
            db, clock, case_id, "verify", actor_of(db, district, "reviewer"), opinion="档案核查无误"
        )
        fire(db, clock, case_id, "publish", SCHEDULER)  # no list: the campaign's own period
        clock.set(saved)
        return case_id

    def test_publicity_ends_after_five_working_days_and_an_objection_holds_its_case(
        self, db: Engine, clock: ManualClock
    ) -> None:
        _tree, campaign = weihai_by_level(db, clock)
        # Verified Thu 8/1; five working days 8/2, 8/5, 8/6, 8/7, 8/8 (the last in full).
        verified = dt.datetime(2024, 8, 1, 10)
        plain = self._in_publicity(db, clock, campaign, "WH-HC-001", verified)
        held = self._in_publicity(db, clock, campaign, "WH-WD-002", verified)
        assert case_row(db, plain).publicity_ends_on == dt.date(2024, 8, 8)
        at(clock, 8, 5, 10)
        fire(
            db, clock, held, "object", actor_of(db, "WH-WD", "reviewer"), opinion="群众反映收入不实"
        )

        for day in (7, 8):
            running = run(db, at(clock, 8, day, 23))
            assert (running.publicity.ended, running.publicity.held_by_objection) == ([], [])
        assert case_row(db, plain).state == "publicity"
        assert [m for m in rows(db, outbox_t) if m.idempotency_key.startswith("publicity")] == []

        over = run(db, at(clock, 8, 9, 0))
        assert (over.publicity.ended, over.publicity.held_by_objection) == ([plain], [held])
        assert (case_row(db, plain).state, case_row(db, held).state) == ("approval", "publicity")

        for day in (9, 12, 13):
            again = run(db, at(clock, 8, day, 18))
            assert (again.publicity.ended, again.publicity.held_by_objection) == ([], [held])
        told = [m for m in rows(db, outbox_t) if m.idempotency_key.startswith("publicity-held:")]
        assert [(m.recipient, m.idempotency_key) for m in told] == [
            ("wh-wd-002@example.org", f"publicity-held:{held}:2024-08-08:email")
        ]
        assert str(held) in told[0].subject and "异议" in told[0].subject
        assert unit(db, "WH-WD-002").name in told[0].body_text
        inbox = [r for r in rows(db, inbox_t) if r.idempotency_key.startswith("publicity-held:")]
        assert [r.unit_code for r in inbox] == ["WH-WD-002"]

        at(clock, 8, 14, 9)
        fire(
            db,
            clock,
            held,
            "resolve_objection",
            actor_of(db, "WH-WD", "reviewer"),
            opinion="经核实收入属实",
        )
        resolved = run(db, clock)
        assert resolved.publicity.ended == [held]
        assert case_row(db, held).state == "approval"

    def test_publicity_across_national_day_and_its_make_up_days(
        self, db: Engine, clock: ManualClock
    ) -> None:
        _tree, campaign = weihai_by_level(db, clock)
        # Verified Fri 9/27: 9/29 (Sunday make-up day), 9/30, then 10/8, 10/9, 10/10.
        case_id = self._in_publicity(db, clock, campaign, "WH-RC-001", dt.datetime(2024, 9, 27, 15))
        assert case_row(db, case_id).publicity_ends_on == dt.date(2024, 10, 10)
        for month, day in ((9, 30), (10, 1), (10, 7), (10, 8), (10, 9), (10, 10)):
            assert run(db, at(clock, month, day, 23)).publicity.ended == []
        assert run(db, at(clock, 10, 11, 0)).publicity.ended == [case_id]
        assert case_row(db, case_id).state == "approval"


# -- the collector while reminders are written ------------------------------------------------------


def test_the_older_objects_are_frozen_while_reminders_are_written_and_thawed_after(
    db: Engine, clock: ManualClock, monkeypatch: Any
) -> None:
    """A chunk's rows set off the collector's full passes, each through the whole process: the
    sweep freezes what was alive before it while it writes, and gives it back after."""
    _tree, campaign = weihai_by_level(db, clock)
    new_case(db, clock, campaign, "WH-HC-001")
    frozen_during: list[int] = []
    real = sweep_module._sweep_deadline

    def watched(*args: Any, **kwargs: Any) -> None:
        frozen_during.append(gc.get_freeze_count())
        real(*args, **kwargs)

    monkeypatch.setattr(sweep_module, "_sweep_deadline", watched)
    assert gc.get_freeze_count() == 0
    report = run(db, at(clock, 7, 26))
    assert [r.unit_code for r in report.reminders] == ["WH-HC-001"]
    assert frozen_during and all(n > 0 for n in frozen_during)
    assert gc.get_freeze_count() == 0


def test_a_heap_frozen_by_someone_else_stays_frozen(db: Engine, clock: ManualClock) -> None:
    """A forking server freezes its heap once before it forks: a sweep must not thaw it."""
    _tree, campaign = weihai_by_level(db, clock)
    new_case(db, clock, campaign, "WH-HC-001")
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        run(db, at(clock, 7, 26))
        # Not thawed (0); frozen objects freed meanwhile leave the count, a few of them.
        assert gc.get_freeze_count() > before // 2 > 0
    finally:
        gc.unfreeze()
