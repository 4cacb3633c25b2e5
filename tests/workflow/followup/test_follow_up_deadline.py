"""The follow-up deadline takes part in reminders like any other (both databases): a campaign
deadline whose `done_when` is "no cases in follow_up" reminds the units whose paid cases are
still waiting for their visit, and not those whose visits closed them."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import Engine

from jinqiu.states import CaseState
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.deadlines.sweep import sweep
from jinqiu.workflow.followup.visits import VisitIn, record_visit
from tests.factories import WEIHAI, actor, case_in, case_row, weihai

RULE = {"visits_required": 1, "local_decision": "测试：回访一次即办结"}
FOLLOW_UP_DEADLINE = {
    "key": "follow_up_visits",
    "title": "完成受助学生回访",
    "due": "2024-09-10",
    "responsible_level": "grassroots",
    "done_when": {"no_cases_in": ["follow_up"]},
}


def test_units_with_cases_waiting_for_a_visit_are_reminded(db: Engine, clock: ManualClock) -> None:
    deadlines = json.loads(WEIHAI.read_text(encoding="utf-8"))["deadlines"]
    _tree, campaign = weihai(db, clock, follow_up=RULE, deadlines=[*deadlines, FOLLOW_UP_DEADLINE])
    waiting = case_in(db, clock, campaign, "WH-HC-001", CaseState.FOLLOW_UP)
    visited = case_in(db, clock, campaign, "WH-WD-001", CaseState.FOLLOW_UP)
    clock.set(dt.datetime(2024, 9, 2, 10))
    with transaction(db) as conn:
        done = record_visit(
            conn,
            visited,
            VisitIn.model_validate({"date": "2024-09-02", "kind": "home", "visitor": "李干事"}),
            actor=actor(conn, "WH-WD-001", "clerk"),
            clock=clock,
        )
    assert done.case_state == CaseState.CLOSED.value

    clock.set(dt.datetime(2024, 9, 5, 8))  # Thu: T-3 working days before Tue 9/10
    report = sweep(db, clock, base_url="https://jinqiu.example.org")
    follow_up = [r for r in report.reminders if r.deadline_key == FOLLOW_UP_DEADLINE["key"]]
    assert [(r.unit_code, r.kind, r.occurrence, r.pending_total) for r in follow_up] == [
        ("WH-HC-001", "before", 3, 1)
    ]
    assert case_row(db, waiting).state == CaseState.FOLLOW_UP.value


def test_after_the_campaign_ends_the_sweep_closes_before_it_reminds(
    db: Engine, clock: ManualClock
) -> None:
    """A follow-up deadline due on the campaign's last day: its overdue notice the next
    morning does not chase the cases that very sweep closed as the campaign ended."""
    raw = json.loads(WEIHAI.read_text(encoding="utf-8"))
    due_at_end = {**FOLLOW_UP_DEADLINE, "due": raw["follow_up"]["closes_on"]}  # 2024-08-31
    _tree, campaign = weihai(db, clock, deadlines=[*raw["deadlines"], due_at_end])
    clock.set(dt.datetime(2024, 8, 28, 9))
    waiting = case_in(db, clock, campaign, "WH-HC-001", CaseState.FOLLOW_UP)

    clock.set(dt.datetime(2024, 8, 29, 8))  # before the end: reminded as any deadline
    reminded = [
        r for r in sweep(db, clock, base_url="https://jinqiu.example.org").reminders
        if r.deadline_key == FOLLOW_UP_DEADLINE["key"]
    ]  # fmt: skip
    assert [(r.unit_code, r.pending_total) for r in reminded] == [("WH-HC-001", 1)]

    clock.set(dt.datetime(2024, 9, 2, 8))  # Mon: overdue 1 working day, were the case open
    report = sweep(db, clock, base_url="https://jinqiu.example.org")
    assert report.follow_up.closed == {campaign: [waiting]}
    assert [r for r in report.reminders if r.deadline_key == FOLLOW_UP_DEADLINE["key"]] == []
    assert case_row(db, waiting).state == CaseState.CLOSED.value
