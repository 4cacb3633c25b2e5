"""Follow-up closed when the campaign ends (both databases; the race on PostgreSQL threads).

The Weihai 2024 file says 助学活动…至8月31日结束 (`follow_up.closes_on`): from 9/1 the sweep
closes, as the scheduler, every case still in follow-up — its trail saying 活动结束，未回访 and
the visits recorded — while a case whose visit met the rule was closed by that visit as before.
Once only, whoever sweeps and however often; chains and counters intact; the statistics (counted
from the payments) the same before and after."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, select

from jinqiu.states import CaseEvent, CaseState
from jinqiu.workflow.audit.models import AuditEntry
from jinqiu.workflow.campaigns.checks import campaign_warnings
from jinqiu.workflow.campaigns.service import load_campaign
from jinqiu.workflow.cases.counters import recount, stored
from jinqiu.workflow.cases.engine import apply_event
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.cases.trail import verify_case_chains
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import make_engine, transaction
from jinqiu.workflow.deadlines.sweep import sweep
from jinqiu.workflow.errors import GuardFailed, PermissionDenied
from jinqiu.workflow.followup import campaign_end
from jinqiu.workflow.followup.campaign_end import close_ended_follow_ups
from jinqiu.workflow.followup.visits import VisitIn, record_visit
from jinqiu.workflow.roles import SCHEDULER
from jinqiu.workflow.statistics.compute import statistics
from jinqiu.workflow.units.models import Unit
from tests.command import run_jinqiu
from tests.factories import (
    ROOT,
    actor,
    actor_of,
    case_in,
    case_row,
    weihai,
    weihai_file,
    weihai_file_in,
)
from tests.workflow.publicity_lists.test_concurrency import race

audit_t = AuditEntry.__table__  # type: ignore[attr-defined]
case_t = Case.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
BASE = "https://jinqiu.example.org"
LAST_DAY = dt.date(2024, 8, 31)  # the Weihai file's follow_up.closes_on


def at(clock: ManualClock, day: dt.date, hour: int = 8) -> None:
    clock.set(dt.datetime.combine(day, dt.time(hour)))


def visit(engine: Engine, clock: ManualClock, case: int, unit: str) -> str:
    with transaction(engine) as conn:
        return record_visit(
            conn,
            case,
            VisitIn.model_validate(
                {"date": clock.now().date().isoformat(), "kind": "phone", "visitor": "李干事"}
            ),
            actor=actor(conn, unit, "clerk"),
            clock=clock,
        ).case_state


def entries(engine: Engine, case: int) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(
            select(audit_t).where(audit_t.c.case_id == case).order_by(audit_t.c.seq)
        ).all()


def consistent(engine: Engine) -> None:
    with engine.connect() as conn:
        assert list(verify_case_chains(conn)) == []
        for campaign in conn.execute(select(case_t.c.campaign_id).distinct()).scalars():
            assert stored(conn, campaign) == recount(conn, campaign)


def city_statistics(engine: Engine, campaign: int) -> dict[str, Any]:
    with engine.connect() as conn:
        city = conn.execute(select(unit_t).where(unit_t.c.code == "WH")).one()
        return statistics(conn, campaign, city)


def test_the_sweep_closes_the_unvisited_once_the_campaign_has_ended(
    db: Engine, clock: ManualClock
) -> None:
    _tree, campaign = weihai(db, clock)
    at(clock, dt.date(2024, 8, 28), hour=9)  # paid in the award phase
    unvisited = case_in(db, clock, campaign, "WH-HC-001", CaseState.FOLLOW_UP)
    visited = case_in(db, clock, campaign, "WH-WD-001", CaseState.FOLLOW_UP)
    unpaid = case_in(db, clock, campaign, "WH-HC-002", CaseState.DISBURSEMENT)
    # A later campaign's case in follow-up: its campaign has not ended.
    with transaction(db) as conn:
        later = load_campaign(conn, weihai_file_in(2025), clock)
    next_year = case_in(db, clock, later, "WH-HC-001", CaseState.FOLLOW_UP)

    at(clock, dt.date(2024, 8, 30), hour=10)
    assert visit(db, clock, visited, "WH-WD-001") == CaseState.CLOSED.value  # as before
    before = city_statistics(db, campaign)

    at(clock, LAST_DAY)  # the last day counts in full: nothing closes yet
    assert sweep(db, clock, base_url=BASE).follow_up.count == 0
    assert case_row(db, unvisited).state == CaseState.FOLLOW_UP.value

    at(clock, LAST_DAY + dt.timedelta(days=1))
    report = sweep(db, clock, base_url=BASE)
    assert report.follow_up.closed == {campaign: [unvisited]}
    assert report.failures == []
    assert [case_row(db, c).state for c in (unvisited, visited, unpaid, next_year)] == [
        CaseState.CLOSED.value,
        CaseState.CLOSED.value,
        CaseState.DISBURSEMENT.value,
        CaseState.FOLLOW_UP.value,
    ]
    last = entries(db, unvisited)[-1]
    assert (last.event, last.actor, last.from_state, last.to_state, last.opinion) == (
        CaseEvent.END_FOLLOW_UP.value,
        SCHEDULER.username,
        CaseState.FOLLOW_UP.value,
        CaseState.CLOSED.value,
        "活动结束，未回访",
    )
    assert last.data == {"campaign_ended_on": "2024-08-31", "visits": 0, "visits_required": 1}
    # The visited case keeps the close its visit fired, and nothing after it.
    assert [e.event for e in entries(db, visited)[-2:]] == ["visit", CaseEvent.CLOSE.value]

    # Again, and the next day: nothing more.
    assert sweep(db, clock, base_url=BASE).follow_up.count == 0
    at(clock, LAST_DAY + dt.timedelta(days=2))
    assert sweep(db, clock, base_url=BASE).follow_up.count == 0
    assert [e.event for e in entries(db, unvisited)].count(CaseEvent.END_FOLLOW_UP.value) == 1
    consistent(db)
    # Counted from the payments: closing by date changes no figure.
    assert city_statistics(db, campaign) == before


def test_a_case_visited_short_of_the_rule_says_how_often(db: Engine, clock: ManualClock) -> None:
    rule = {**weihai_file().model_dump(mode="json")["follow_up"], "visits_required": 2}
    _tree, campaign = weihai(db, clock, follow_up=rule)
    at(clock, dt.date(2024, 8, 28), hour=9)
    case = case_in(db, clock, campaign, "WH-HC-001", CaseState.FOLLOW_UP)
    at(clock, dt.date(2024, 8, 30), hour=10)
    assert visit(db, clock, case, "WH-HC-001") == CaseState.FOLLOW_UP.value

    at(clock, dt.date(2024, 9, 2))
    assert close_ended_follow_ups(db, clock).closed == {campaign: [case]}
    last = entries(db, case)[-1]
    assert last.opinion == "活动结束，回访未达要求（已回访1次）"
    assert (last.data["visits"], last.data["visits_required"]) == (1, 2)
    consistent(db)


def test_only_the_scheduler_closes_by_date_and_only_after_the_end(
    db: Engine, clock: ManualClock
) -> None:
    _tree, campaign = weihai(db, clock)
    at(clock, dt.date(2024, 8, 28), hour=9)
    case = case_in(db, clock, campaign, "WH-HC-001", CaseState.FOLLOW_UP)

    def fire(who: Any) -> None:
        with transaction(db) as conn:
            apply_event(
                conn,
                case_id=case,
                event=CaseEvent.END_FOLLOW_UP,
                expected_version=case_row(db, case).version,
                actor=who,
                clock=clock,
            )

    at(clock, LAST_DAY + dt.timedelta(days=1))
    with pytest.raises(PermissionDenied):
        fire(actor_of(db, "WH", "manager"))
    at(clock, LAST_DAY, hour=18)
    with pytest.raises(GuardFailed) as refused:
        fire(SCHEDULER)
    assert [r.code for r in refused.value.reasons] == ["campaign_not_ended"]
    assert "2024-08-31" in refused.value.reasons[0].message
    assert case_row(db, case).state == CaseState.FOLLOW_UP.value


def test_a_campaign_without_an_end_keeps_its_cases_in_follow_up(
    db: Engine, clock: ManualClock
) -> None:
    """Dalian's kind of rule: visits while the student is at school, no day they stop."""
    rule = {"visits_required": 1, "local_decision": "测试：无结束日期"}
    _tree, campaign = weihai(db, clock, follow_up=rule)
    at(clock, dt.date(2024, 8, 28), hour=9)
    case = case_in(db, clock, campaign, "WH-HC-001", CaseState.FOLLOW_UP)
    at(clock, dt.date(2025, 3, 1))
    assert sweep(db, clock, base_url=BASE).follow_up.count == 0
    assert case_row(db, case).state == CaseState.FOLLOW_UP.value


def test_a_crash_between_chunks_keeps_what_was_done_and_the_next_sweep_does_the_rest(
    db: Engine, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tree, campaign = weihai(db, clock)
    at(clock, dt.date(2024, 8, 28), hour=9)
    cases = [case_in(db, clock, campaign, "WH-HC-001", CaseState.FOLLOW_UP) for _ in range(5)]
    monkeypatch.setattr(campaign_end, "CHUNK", 2)
    real = campaign_end.apply_bulk
    calls = 0

    def crash_on_the_second_chunk(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("connection lost")
        return real(*args, **kwargs)

    monkeypatch.setattr(campaign_end, "apply_bulk", crash_on_the_second_chunk)
    at(clock, LAST_DAY + dt.timedelta(days=1))
    report = sweep(db, clock, base_url=BASE)
    assert report.follow_up.closed == {campaign: cases[:2]}
    assert [(f.campaign_id, f.stage) for f in report.failures] == [(campaign, "活动结束回访办结")]
    assert [case_row(db, c).state for c in cases[2:]] == [CaseState.FOLLOW_UP.value] * 3

    monkeypatch.setattr(campaign_end, "apply_bulk", real)
    report = sweep(db, clock, base_url=BASE)
    assert report.follow_up.closed == {campaign: cases[2:]} and report.failures == []
    assert {case_row(db, c).state for c in cases} == {CaseState.CLOSED.value}
    consistent(db)


def test_two_sweepers_racing_close_each_case_once(pg: Engine, clock: ManualClock) -> None:
    _tree, campaign = weihai(pg, clock)
    at(clock, dt.date(2024, 8, 28), hour=9)
    units = ("WH-HC-001", "WH-HC-002", "WH-WD-001")
    cases = [case_in(pg, clock, campaign, units[i % 3], CaseState.FOLLOW_UP) for i in range(30)]
    at(clock, LAST_DAY + dt.timedelta(days=1))

    results = race(4, lambda: close_ended_follow_ups(pg, clock))
    closed = sorted(c for r in results for ids in r.closed.values() for c in ids)
    assert closed == cases, results
    assert all(r.failures == [] for r in results), results
    for case in cases:
        events = [e.event for e in entries(pg, case)]
        assert events.count(CaseEvent.END_FOLLOW_UP.value) == 1, (case, events)
        assert case_row(pg, case).state == CaseState.CLOSED.value
    consistent(pg)


def test_the_file_names_the_end_with_its_source(clock: ManualClock) -> None:
    rule = weihai_file().model_dump(mode="json")["follow_up"]
    assert rule["closes_on"] == "2024-08-31"
    with pytest.raises(ValidationError, match="closes_on_source"):
        weihai_file(follow_up={**rule, "closes_on_source": None})
    with pytest.raises(ValidationError, match="早于活动的第一个阶段"):
        weihai_file(follow_up={**rule, "closes_on": "2024-07-01"})


def test_an_end_before_the_payment_window_closes_is_warned_of() -> None:
    rule = weihai_file().model_dump(mode="json")["follow_up"]
    codes = [w["code"] for w in campaign_warnings(weihai_file())]
    assert "follow_up_closes_before_payment" not in codes  # 8/31, after the 8/23–8/29 window
    (warned,) = [
        w
        for w in campaign_warnings(weihai_file(follow_up={**rule, "closes_on": "2024-08-27"}))
        if w["code"] == "follow_up_closes_before_payment"
    ]
    assert warned["field"] == "follow_up.closes_on"
    assert "2024-08-27" in warned["message"] and "2024-08-29" in warned["message"]


def test_jinqiu_tick_says_how_many_it_closed(tmp_path: Path, clock: ManualClock) -> None:
    url = f"sqlite:///{tmp_path / 'jinqiu.db'}"
    env = {**os.environ, "JINQIU_DATABASE_URL": url, "PYTHONUTF8": "1"}
    assert run_jinqiu(env, ["db", "upgrade"], cwd=ROOT).code == 0
    engine = make_engine(url)
    try:
        _tree, campaign = weihai(engine, clock)
        at(clock, dt.date(2024, 8, 28), hour=9)
        case = case_in(engine, clock, campaign, "WH-HC-001", CaseState.FOLLOW_UP)
    finally:
        engine.dispose()
    run = run_jinqiu(env, ["tick", "--now", "2024-09-01T08:00:00+08:00"], cwd=ROOT)
    assert run.code == 0, run.err
    assert "  follow-up closed, the campaign ended: 1\n" in run.out
    again = run_jinqiu(env, ["tick", "--now", "2024-09-01T09:00:00+08:00"], cwd=ROOT)
    assert "  follow-up closed, the campaign ended: 0\n" in again.out
    engine = make_engine(url)
    try:
        assert case_row(engine, case).state == CaseState.CLOSED.value
    finally:
        engine.dispose()
