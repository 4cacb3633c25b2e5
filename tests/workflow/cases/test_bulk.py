"""Bulk transitions (`apply_bulk`) on both databases: what a set-based implementation must keep.

* each item is decided as `apply_event` would decide it alone, in input order, and a refused
  item writes nothing;
* the rows written are the bytes N single transitions in the same order write (case rows,
  audit entries, funds, counters) — two identical worlds, one driven each way;
* money stays exact, also with two bulk approvals racing for one fund (PostgreSQL);
* a single event and a bulk on the same cases at the same time: each case moves once;
* the dashboard counters still equal a recount.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.event import listen, remove

from jinqiu.states import CaseEvent, CaseState
from jinqiu.workflow.audit.models import AuditEntry
from jinqiu.workflow.campaigns.models import FundSource
from jinqiu.workflow.cases.bulk import BulkItem, BulkItemResult, apply_bulk
from jinqiu.workflow.cases.counters import counter_differences, unit_case_count
from jinqiu.workflow.cases.engine import TransitionResult, apply_event
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import snapshot, transaction
from jinqiu.workflow.errors import (
    DomainError,
    EventNotAllowed,
    GuardFailed,
    InsufficientFunds,
    NotFound,
    PermissionDenied,
    ValidationFailed,
    VersionConflict,
)
from jinqiu.workflow.money import format_yuan
from jinqiu.workflow.roles import SCHEDULER, Actor
from tests.conftest import _wipe as wipe
from tests.factories import (
    actor_of,
    case_in,
    case_row,
    new_case,
    rows_not_naming_their_parent,
    weihai,
    weihai_amount_fen,
)
from tests.workflow.cases.test_concurrency import (
    JOIN_TIMEOUT,
    Gate,
    broken_chains,
    leading,
    race,
)
from tests.workflow.cases.test_engine import CITY, DISTRICT, GRASSROOTS

audit_t = AuditEntry.__table__  # type: ignore[attr-defined]
case_t = Case.__table__  # type: ignore[attr-defined]
count_t = unit_case_count
fund_t = FundSource.__table__  # type: ignore[attr-defined]

OTHER_DISTRICT_GRASSROOTS = "WH-WD-001"
SEEDED_ON = dt.datetime(2024, 7, 20, 9, 0)  # survey phase: cases are created (and submitted)
APPROVAL_DAY = dt.datetime(2024, 8, 12, 9, 0)
PUBLICITY_OVER = dt.datetime(2024, 8, 9, 10, 0)  # five working days after 7/20 are long past
FIRST_TIER_FEN = weihai_amount_fen()  # an undergraduate at a first-tier university
THIRD_TIER = {"education_level": "undergraduate", "tier": "third"}
THIRD_TIER_FEN = weihai_amount_fen(**THIRD_TIER)


def bulk(
    engine: Engine,
    clock: ManualClock,
    who: Actor,
    event: CaseEvent | str,
    items: Sequence[BulkItem],
    **kw: Any,
) -> list[BulkItemResult]:
    with transaction(engine) as conn:
        return apply_bulk(conn, items=items, event=event, actor=who, clock=clock, **kw)


def item(engine: Engine, case_id: int, *, stale: bool = False) -> BulkItem:
    version = case_row(engine, case_id).version
    return BulkItem(id=case_id, version=version - 1 if stale else version)


def trail(engine: Engine, case_id: int) -> dict[str, Any]:
    """Everything a transition of this case writes to its row and its audit trail."""
    with engine.connect() as conn:
        return {
            "case": conn.execute(select(case_t).where(case_t.c.id == case_id)).one()._asdict(),
            "audit": [
                e._asdict()
                for e in conn.execute(
                    select(audit_t).where(audit_t.c.case_id == case_id).order_by(audit_t.c.seq)
                )
            ],
        }


def outcome(results: Sequence[BulkItemResult]) -> list[tuple[int, str]]:
    return [(r.id, "ok" if r.ok else r.error.code if r.error else "?") for r in results]


def assert_moved_once(
    before: dict[str, Any], after: dict[str, Any], result: BulkItemResult
) -> None:
    """One transition: a new version and exactly one new audit entry, the one the row points to."""
    assert result.ok and result.error is None
    assert after["case"]["version"] == before["case"]["version"] + 1 == result.version
    assert after["case"]["state"] == result.state
    assert after["audit"][:-1] == before["audit"]
    assert len(after["audit"]) == len(before["audit"]) + 1
    assert after["case"]["audit_head"] == after["audit"][-1]["hash"]


class LockGate(Gate):
    """Holds each racing thread before its first statement that writes or locks a row, until
    all of them got there: every thread has read and checked, none holds a row lock yet."""

    def __init__(self, parties: int) -> None:
        super().__init__("", parties)

    def before_cursor_execute(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        text = leading(statement)
        if text.startswith(("UPDATE", "INSERT", "DELETE")) or "FOR UPDATE" in text:
            super().before_cursor_execute(conn, cursor, statement, *args)


@contextmanager
def lock_gate(engine: Engine, parties: int) -> Iterator[LockGate]:
    g = LockGate(parties)
    listen(engine, "before_cursor_execute", g.before_cursor_execute)
    try:
        yield g
    finally:
        remove(engine, "before_cursor_execute", g.before_cursor_execute)
    assert g.reached == parties, f"only {g.reached} of {parties} threads got there: not forced"


def counters_match(engine: Engine) -> list[str]:
    """What differs from a recount, and every counter row that does not name its unit's parent."""
    with snapshot(engine) as conn:
        return [d.describe() for d in counter_differences(conn)] + rows_not_naming_their_parent(
            conn
        )


# -- 1. a mixed batch: a result per item, in order; the refused ones untouched ---------------------


def test_a_mixed_approval_batch_answers_each_case_in_order_and_refusals_write_nothing(
    db: Engine, clock: ManualClock
) -> None:
    _tree, campaign = weihai(db, clock)
    at_district = [
        case_in(db, clock, campaign, unit, CaseState.APPROVAL, approved=1)
        for unit in (GRASSROOTS, "WH-HC-002", "WH-HC-003")
    ]
    won, won_too, stale = at_district
    in_publicity = case_in(db, clock, campaign, GRASSROOTS, CaseState.PUBLICITY)
    elsewhere = case_in(
        db, clock, campaign, OTHER_DISTRICT_GRASSROOTS, CaseState.APPROVAL, approved=1
    )
    at_grassroots = case_in(db, clock, campaign, "WH-HC-002", CaseState.APPROVAL, approved=0)
    ids = [won, won_too, stale, in_publicity, elsewhere, at_grassroots]
    before = {c: trail(db, c) for c in ids}
    items = [
        item(db, won),
        item(db, stale, stale=True),
        item(db, in_publicity),
        item(db, elsewhere),
        item(db, at_grassroots),
        item(db, won_too),
    ]
    clock.set(APPROVAL_DAY)

    results = bulk(db, clock, actor_of(db, DISTRICT, "approver"), "approve", items, opinion="同意")

    assert outcome(results) == [
        (won, "ok"),
        (stale, "version_conflict"),
        (in_publicity, "event_not_allowed"),
        (elsewhere, "not_found"),
        (at_grassroots, "forbidden"),
        (won_too, "ok"),
    ]
    errors = [r.error for r in results]
    assert isinstance(errors[1], VersionConflict)
    assert isinstance(errors[2], EventNotAllowed)
    assert errors[2].details["state"] == "publicity"
    assert "approve" not in errors[2].details["allowed_events"]
    assert isinstance(errors[3], NotFound)
    assert isinstance(errors[4], PermissionDenied)
    for result in (results[0], results[5]):  # on to the city, the last level
        after = trail(db, result.id)
        assert_moved_once(before[result.id], after, result)
        assert (after["case"]["state"], after["case"]["approval_step"]) == ("approval", 2)
        assert after["audit"][-1]["data"] == {"approval_level": "district"}
    for refused in (stale, in_publicity, elsewhere, at_grassroots):
        assert trail(db, refused) == before[refused]
    assert broken_chains(db) == []
    assert counters_match(db) == []


def test_a_mixed_submit_batch_names_every_reason_of_a_guard_failure(
    db: Engine, clock: ManualClock
) -> None:
    _tree, campaign = weihai(db, clock)
    eligible = [new_case(db, clock, campaign, GRASSROOTS) for _ in range(3)]
    won, won_too, stale = eligible
    refused_by_guards = new_case(
        db,
        clock,
        campaign,
        GRASSROOTS,
        worker_changes={"archived_on": "2023-05-01"},
        student_changes={"already_aided_by": "国家助学金"},
    )
    already_submitted = case_in(db, clock, campaign, GRASSROOTS, CaseState.ARCHIVE_CHECK)
    sibling_unit = new_case(db, clock, campaign, "WH-HC-002")
    ids = [*eligible, refused_by_guards, already_submitted, sibling_unit]
    before = {c: trail(db, c) for c in ids}
    items = [
        item(db, won),
        item(db, refused_by_guards),
        item(db, already_submitted),
        item(db, stale, stale=True),
        item(db, sibling_unit),
        item(db, won_too),
    ]

    results = bulk(db, clock, actor_of(db, GRASSROOTS, "clerk"), CaseEvent.SUBMIT, items)

    assert outcome(results) == [
        (won, "ok"),
        (refused_by_guards, "guard_failed"),
        (already_submitted, "event_not_allowed"),
        (stale, "version_conflict"),
        (sibling_unit, "not_found"),
        (won_too, "ok"),
    ]
    guard_failure = results[1].error
    assert isinstance(guard_failure, GuardFailed)
    assert [r["code"] for r in guard_failure.details["reasons"]] == [
        "archive_expired",
        "already_aided",
    ]
    for result in (results[0], results[5]):
        assert_moved_once(before[result.id], trail(db, result.id), result)
        assert result.state == CaseState.ARCHIVE_CHECK
    for refused in (refused_by_guards, already_submitted, stale, sibling_unit):
        assert trail(db, refused) == before[refused]
    assert counters_match(db) == []


def test_a_case_named_twice_is_decided_as_two_single_requests_in_a_row(
    db: Engine, clock: ManualClock
) -> None:
    """The later mention sees what the earlier one did: moved (a conflict now), refused for its
    version (nothing changed: it moves now) or refused by its guards (refused again)."""
    _tree, campaign = weihai(db, clock)
    moved_first, stale_first = (new_case(db, clock, campaign, GRASSROOTS) for _ in range(2))
    refused = new_case(
        db, clock, campaign, GRASSROOTS, student_changes={"already_aided_by": "国家助学金"}
    )
    before = {c: trail(db, c) for c in (moved_first, stale_first, refused)}
    items = [
        item(db, moved_first),
        item(db, stale_first, stale=True),
        item(db, refused),
        item(db, moved_first),
        item(db, stale_first),
        item(db, refused),
    ]

    results = bulk(db, clock, actor_of(db, GRASSROOTS, "clerk"), CaseEvent.SUBMIT, items)

    assert outcome(results) == [
        (moved_first, "ok"),
        (stale_first, "version_conflict"),
        (refused, "guard_failed"),
        (moved_first, "version_conflict"),
        (stale_first, "ok"),
        (refused, "guard_failed"),
    ]
    assert_moved_once(before[moved_first], trail(db, moved_first), results[0])
    assert_moved_once(before[stale_first], trail(db, stale_first), results[4])
    assert trail(db, refused) == before[refused]
    assert counters_match(db) == []


def test_refusals_are_checked_per_item_in_the_engines_order(db: Engine, clock: ManualClock) -> None:
    """A return without its required reason: the case the reviewer cannot see is still that
    item's not_found (scope before input), the one they can see a validation_error."""
    _tree, campaign = weihai(db, clock)
    mine = case_in(db, clock, campaign, GRASSROOTS, CaseState.ARCHIVE_CHECK)
    not_mine = case_in(db, clock, campaign, OTHER_DISTRICT_GRASSROOTS, CaseState.ARCHIVE_CHECK)
    before = {c: trail(db, c) for c in (mine, not_mine)}

    results = bulk(
        db,
        clock,
        actor_of(db, DISTRICT, "reviewer"),
        "return",
        [item(db, mine), item(db, not_mine)],
    )

    assert outcome(results) == [(mine, "validation_error"), (not_mine, "not_found")]
    assert isinstance(results[0].error, ValidationFailed)
    assert results[0].error.details[0]["field"] == "opinion"
    assert {c: trail(db, c) for c in (mine, not_mine)} == before


def test_no_items_is_no_results_and_no_writes(db: Engine, clock: ManualClock) -> None:
    _tree, campaign = weihai(db, clock)
    case_id = case_in(db, clock, campaign, GRASSROOTS, CaseState.APPROVAL, approved=1)
    before = trail(db, case_id)
    assert bulk(db, clock, actor_of(db, DISTRICT, "approver"), "approve", []) == []
    assert trail(db, case_id) == before


# -- 2. the same bytes as N single transitions -------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """A world seeded at SEEDED_ON, then at `when` one event by one actor on its cases."""

    seed: Callable[[Engine, ManualClock, int], list[BulkItem]]
    who: Callable[[Engine], Actor]
    event: CaseEvent
    when: dt.datetime
    opinion: str | None = None
    campaign: dict[str, Any] = field(default_factory=dict)


def at_the_district_level(engine: Engine, clock: ManualClock, campaign: int) -> list[BulkItem]:
    """Five cases waiting for the district, and in the middle one still at the grassroots
    level (forbidden to the district): a refusal must not shift what the others write."""
    ids = [
        case_in(engine, clock, campaign, unit, CaseState.APPROVAL, approved=1)
        for unit in (GRASSROOTS, "WH-HC-002", "WH-HC-003", GRASSROOTS, "WH-HC-002")
    ]
    ids.insert(2, case_in(engine, clock, campaign, "WH-HC-003", CaseState.APPROVAL))
    return [item(engine, c) for c in ids]


def at_the_city_level(engine: Engine, clock: ManualClock, campaign: int) -> list[BulkItem]:
    """A, A, B, A, A (A a first-tier amount, B a third-tier one, more) against 2A government +
    A donation: the first two from the government, B refused, the fourth from the donations,
    the fifth refused."""
    assert THIRD_TIER_FEN > FIRST_TIER_FEN  # what makes the third case too dear for the donations
    ids = [
        case_in(
            engine,
            clock,
            campaign,
            unit,
            CaseState.APPROVAL,
            approved=2,
            student_changes=THIRD_TIER if i == 2 else None,
        )
        for i, unit in enumerate((GRASSROOTS, "WH-HC-002", GRASSROOTS, "WH-WD-001", "WH-HC-003"))
    ]
    return [item(engine, c) for c in ids]


def in_publicity(engine: Engine, clock: ManualClock, campaign: int) -> list[BulkItem]:
    """Four cases whose publicity is over; the third has an objection open (its guard refuses);
    the fourth, filed by the district union itself, skips the grassroots level (audited)."""
    ids = [
        case_in(engine, clock, campaign, unit, CaseState.PUBLICITY)
        for unit in (GRASSROOTS, "WH-WD-001", "WH-HC-002", DISTRICT)
    ]
    with transaction(engine) as conn:
        apply_event(
            conn,
            case_id=ids[2],
            event=CaseEvent.OBJECT,
            expected_version=case_row(engine, ids[2]).version,
            actor=actor_of(engine, DISTRICT, "reviewer"),
            clock=clock,
            opinion="群众反映家庭收入不实",
        )
    return [item(engine, c) for c in ids]


SCENARIOS = {
    "approve at a level before the last": Scenario(
        at_the_district_level,
        lambda e: actor_of(e, DISTRICT, "approver"),
        CaseEvent.APPROVE,
        APPROVAL_DAY,
        opinion="同意",
    ),
    "approve at the last level: money reserved, then short": Scenario(
        at_the_city_level,
        lambda e: actor_of(e, CITY, "approver"),
        CaseEvent.APPROVE,
        APPROVAL_DAY,
        opinion="同意资助",
        campaign={
            "funds": [
                {"source": "government", "budget": format_yuan(2 * FIRST_TIER_FEN)},
                {"source": "donation", "budget": format_yuan(FIRST_TIER_FEN)},
            ]
        },
    ),
    "end publicity, by the scheduler": Scenario(
        in_publicity, lambda _e: SCHEDULER, CaseEvent.END_PUBLICITY, PUBLICITY_OVER
    ),
}


def written(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """What the comparison covers: case rows, audit entries (all but the id), funds, counters."""
    audit_columns = [c for c in audit_t.c if c.name != "id"]
    with engine.connect() as conn:
        return {
            "cases": [
                tuple(r)
                for r in conn.execute(
                    select(
                        case_t.c.id,
                        case_t.c.state,
                        case_t.c.version,
                        case_t.c.approval_step,
                        case_t.c.audit_seq,
                        case_t.c.audit_head,
                        case_t.c.approved_amount_fen,
                        case_t.c.fund_source_id,
                        case_t.c.objection_open,
                        case_t.c.publicity_ends_on,
                        case_t.c.updated_at,
                    ).order_by(case_t.c.id)
                )
            ],
            "audit": [
                tuple(r)
                for r in conn.execute(
                    select(*audit_columns).order_by(audit_t.c.case_id, audit_t.c.seq)
                )
            ],
            "funds": [
                tuple(r)
                for r in conn.execute(
                    select(fund_t.c.id, fund_t.c.reserved_fen, fund_t.c.paid_fen).order_by(
                        fund_t.c.id
                    )
                )
            ],
            "counters": [
                tuple(r)
                for r in conn.execute(
                    select(count_t).order_by(count_t.c.campaign_id, count_t.c.unit_code)
                )
            ],
        }


def world_driven(
    db: Engine, clock: ManualClock, scenario: Scenario, *, by_bulk: bool
) -> tuple[list[tuple[int, str]], dict[str, list[tuple[Any, ...]]]]:
    """A fresh world (the database emptied, ids from 1 again), seeded at SEEDED_ON, then the
    scenario's event on its items: one `apply_bulk`, or one `apply_event` per item in input
    order in one transaction (a refused one in a savepoint, as the single requests would be)."""
    wipe(db)
    clock.set(SEEDED_ON)
    _tree, campaign = weihai(db, clock, **scenario.campaign)
    items = scenario.seed(db, clock, campaign)
    who = scenario.who(db)
    clock.set(scenario.when)
    if by_bulk:
        results = bulk(db, clock, who, scenario.event, items, opinion=scenario.opinion)
        return outcome(results), written(db)
    outcomes: list[tuple[int, str]] = []
    with transaction(db) as conn:
        for one in items:
            try:
                with conn.begin_nested():
                    apply_event(
                        conn,
                        case_id=one.id,
                        event=scenario.event,
                        expected_version=one.version,
                        actor=who,
                        clock=clock,
                        opinion=scenario.opinion,
                    )
                outcomes.append((one.id, "ok"))
            except DomainError as error:
                outcomes.append((one.id, error.code))
    return outcomes, written(db)


@pytest.mark.parametrize("name", SCENARIOS)
def test_a_bulk_writes_the_bytes_of_the_same_single_transitions(
    db: Engine, clock: ManualClock, name: str
) -> None:
    scenario = SCENARIOS[name]
    singly, by_singles = world_driven(db, clock, scenario, by_bulk=False)
    in_bulk, by_bulk = world_driven(db, clock, scenario, by_bulk=True)

    assert in_bulk == singly
    assert "ok" in {code for _id, code in in_bulk}
    assert {code for _id, code in in_bulk} != {"ok"}  # each scenario has a refusal in it
    for table in ("cases", "audit", "funds", "counters"):
        assert by_bulk[table] == by_singles[table], table
    if scenario.event is CaseEvent.END_PUBLICITY:  # the district's own case skipped a level
        data = [c.name for c in audit_t.c if c.name != "id"].index("data")
        assert [e[data]["skipped_levels"] for e in by_bulk["audit"] if "skipped_levels" in e[data]]
    assert broken_chains(db) == []
    assert counters_match(db) == []


def test_the_city_level_scenario_spends_the_funds_in_input_order(
    db: Engine, clock: ManualClock
) -> None:
    """What the byte comparison above compares, spelled out for the money: the bulk reserves
    as the single approvals in input order would, fund source by fund source."""
    outcomes, rows = world_driven(
        db, clock, SCENARIOS["approve at the last level: money reserved, then short"], by_bulk=True
    )
    assert [code for _id, code in outcomes] == [
        "ok",
        "ok",
        "insufficient_funds",
        "ok",
        "insufficient_funds",
    ]
    government, donation = (fund_id for fund_id, _reserved, _paid in rows["funds"])
    assert rows["funds"] == [(government, 2 * FIRST_TIER_FEN, 0), (donation, FIRST_TIER_FEN, 0)]
    reserved_by = [(r[6], r[7]) for r in rows["cases"]]
    assert reserved_by == [
        (FIRST_TIER_FEN, government),
        (FIRST_TIER_FEN, government),
        (None, None),
        (FIRST_TIER_FEN, donation),
        (None, None),
    ]


# -- 3. money stays exact ------------------------------------------------------------------------


def final_level_cases(engine: Engine, clock: ManualClock, campaign: int, n: int) -> list[int]:
    units = (GRASSROOTS, "WH-HC-002", OTHER_DISTRICT_GRASSROOTS, "WH-RC-001")
    return [
        case_in(engine, clock, campaign, units[i % len(units)], CaseState.APPROVAL, approved=2)
        for i in range(n)
    ]


def fund(engine: Engine, campaign: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(fund_t).where(fund_t.c.campaign_id == campaign)).one()


def test_a_bulk_approval_reserves_only_what_the_fund_holds(db: Engine, clock: ManualClock) -> None:
    _tree, campaign = weihai(
        db, clock, funds=[{"source": "government", "budget": format_yuan(7 * FIRST_TIER_FEN)}]
    )
    case_ids = final_level_cases(db, clock, campaign, 20)
    before = {c: trail(db, c) for c in case_ids}
    clock.set(APPROVAL_DAY)

    results = bulk(
        db,
        clock,
        actor_of(db, CITY, "approver"),
        "approve",
        [item(db, c) for c in case_ids],
        opinion="同意资助",
    )

    assert outcome(results) == [(c, "ok") for c in case_ids[:7]] + [
        (c, "insufficient_funds") for c in case_ids[7:]
    ]
    assert all(isinstance(r.error, InsufficientFunds) for r in results[7:])
    after = fund(db, campaign)
    assert (after.reserved_fen, after.paid_fen) == (7 * FIRST_TIER_FEN, 0)
    assert after.budget_fen - after.reserved_fen - after.paid_fen >= 0
    for result in results[:7]:
        moved = trail(db, result.id)
        assert_moved_once(before[result.id], moved, result)
        assert (moved["case"]["state"], moved["case"]["approved_amount_fen"]) == (
            "disbursement",
            FIRST_TIER_FEN,
        )
        assert moved["audit"][-1]["data"]["amount"] == format_yuan(FIRST_TIER_FEN)
    for refused in case_ids[7:]:
        assert trail(db, refused) == before[refused]
    assert broken_chains(db) == []
    assert counters_match(db) == []


@pytest.mark.postgres
def test_two_bulk_approvals_racing_for_one_fund_reserve_it_exactly(
    pg: Engine, clock: ManualClock
) -> None:
    """Two threads, 20 different final-level cases each, money for 15, both held until both
    have read everything they read before their first lock; the fund row decides."""
    _tree, campaign = weihai(
        pg, clock, funds=[{"source": "government", "budget": format_yuan(15 * FIRST_TIER_FEN)}]
    )
    case_ids = final_level_cases(pg, clock, campaign, 40)
    halves = [case_ids[:20], case_ids[20:]]
    items = [[item(pg, c) for c in half] for half in halves]
    city = actor_of(pg, CITY, "approver")
    clock.set(APPROVAL_DAY)

    def approve(i: int) -> list[BulkItemResult]:
        return bulk(pg, clock, city, "approve", items[i], opinion="同意资助")

    with lock_gate(pg, parties=2) as hold:
        outcomes = race(approve, n=2, hold=hold)
    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes

    results = [r for per_thread in outcomes for r in per_thread]
    won = [r for r in results if r.ok]
    refused = [r for r in results if not r.ok]
    assert (len(won), len(refused)) == (15, 25)
    assert {type(r.error) for r in refused} == {InsufficientFunds}
    after = fund(pg, campaign)
    assert (after.reserved_fen, after.paid_fen) == (15 * FIRST_TIER_FEN, 0)
    with pg.connect() as conn:
        states = {
            r.id: r.state
            for r in conn.execute(
                select(case_t.c.id, case_t.c.state).where(case_t.c.id.in_(case_ids))
            )
        }
    assert {c for c, s in states.items() if s == "disbursement"} == {r.id for r in won}
    assert broken_chains(pg) == []
    assert counters_match(pg) == []


# -- 4. single events and a bulk on the same cases at the same time ----------------------------


@dataclass(frozen=True)
class Contested:
    """Cases and the event a bulk and single requests fire on them at once."""

    event: CaseEvent
    who: tuple[str, str]  # unit, role
    state: CaseState
    approved: int = 0
    opinion: str | None = None


CONTESTED = {
    # on to the next level; the state stays, so no counter changes
    "approve at a level before the last": Contested(
        CaseEvent.APPROVE, (DISTRICT, "approver"), CaseState.APPROVAL, 1, "同意"
    ),
    # survey → archive_check: the counters of every unit on the path change
    "submit": Contested(CaseEvent.SUBMIT, (GRASSROOTS, "clerk"), CaseState.SURVEY),
    # the fund row, the case row and the counters: money moves, the state changes
    "approve at the last level": Contested(
        CaseEvent.APPROVE, (CITY, "approver"), CaseState.APPROVAL, 2, "同意资助"
    ),
}


def single_and_bulk_at_once(
    pg: Engine, clock: ManualClock, contest: Contested, forced: bool
) -> None:
    """20 cases; one thread fires the event on all of them in one bulk while 20 threads fire it
    on one case each. Every case moves exactly once; every loser is told version_conflict —
    never a deadlock (a bulk holds counter and fund rows while it goes on to the next case)."""
    _tree, campaign = weihai(pg, clock)
    who = actor_of(pg, *contest.who)
    event, opinion = contest.event, contest.opinion
    units = (GRASSROOTS,) if contest.who[1] == "clerk" else (GRASSROOTS, "WH-HC-002", "WH-HC-003")
    case_ids = [
        case_in(
            pg, clock, campaign, units[i % len(units)], contest.state, approved=contest.approved
        )
        for i in range(20)
    ]
    before = {c: trail(pg, c) for c in case_ids}
    items = [item(pg, c) for c in case_ids]

    def fire(i: int) -> list[BulkItemResult] | TransitionResult:
        if i == 0:
            return bulk(pg, clock, who, event, items, opinion=opinion)
        with transaction(pg) as conn:
            return apply_event(
                conn,
                case_id=items[i - 1].id,
                event=event,
                expected_version=items[i - 1].version,
                actor=who,
                clock=clock,
                opinion=opinion,
            )

    threads = 1 + len(items)
    if forced:
        with lock_gate(pg, parties=threads) as hold:
            outcomes = race(fire, n=threads, hold=hold)
    else:
        outcomes = race(fire, n=threads)

    by_bulk = outcomes[0]
    assert isinstance(by_bulk, list), by_bulk
    assert [r.id for r in by_bulk] == case_ids
    singles = dict(zip(case_ids, outcomes[1:], strict=True))
    unexpected = [
        o
        for o in singles.values()
        if isinstance(o, BaseException) and not isinstance(o, VersionConflict)
    ]
    assert not unexpected, unexpected
    for result in by_bulk:
        single = singles[result.id]
        single_won = isinstance(single, TransitionResult)
        assert result.ok != single_won, (result, single)  # exactly one of the two moved it
        if not result.ok:
            assert isinstance(result.error, VersionConflict), result.error
        after = trail(pg, result.id)
        winner = result if result.ok else single
        assert isinstance(winner, BulkItemResult | TransitionResult)
        assert after["case"]["version"] == before[result.id]["case"]["version"] + 1
        assert after["case"]["version"] == winner.version
        assert len(after["audit"]) == len(before[result.id]["audit"]) + 1
    assert broken_chains(pg) == []
    assert counters_match(pg) == []


@pytest.mark.postgres
@pytest.mark.parametrize("name", CONTESTED)
def test_single_events_and_a_bulk_on_the_same_cases_move_each_case_once(
    pg: Engine, clock: ManualClock, name: str
) -> None:
    single_and_bulk_at_once(pg, clock, CONTESTED[name], forced=False)


@pytest.mark.postgres
@pytest.mark.parametrize("name", CONTESTED)
def test_single_events_and_a_bulk_all_past_their_checks_still_move_each_case_once(
    pg: Engine, clock: ManualClock, name: str
) -> None:
    single_and_bulk_at_once(pg, clock, CONTESTED[name], forced=True)


BEYOND_A_CHUNK = 1100  # more cases than a set-based bulk takes per chunk (1000)


@pytest.mark.postgres
def test_single_events_on_cases_a_long_bulk_has_not_reached_yet_do_not_deadlock(
    pg: Engine, clock: ManualClock
) -> None:
    """One bulk submits 1,100 cases; once it has counted its first case (it now holds counter
    rows), 20 single submits fire on cases spread over the whole batch, most of them in its
    later part. A bulk that locked only the part it is working on would meet them there: they
    hold their case row and wait for its counters, it waits for their case row — a deadlock.
    Every case moves exactly once; every loser is told version_conflict."""
    _tree, campaign = weihai(pg, clock)
    clerk = actor_of(pg, GRASSROOTS, "clerk")
    case_ids = [new_case(pg, clock, campaign, GRASSROOTS) for _ in range(BEYOND_A_CHUNK)]
    items = [BulkItem(id=c, version=1) for c in case_ids]
    contested = case_ids[:: BEYOND_A_CHUNK // 20][:20]
    counted = threading.Event()

    def bulk_counted(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if threading.current_thread().name == "racer-0" and "unit_case_count" in statement:
            counted.set()

    def fire(i: int) -> list[BulkItemResult] | TransitionResult:
        if i == 0:
            return bulk(pg, clock, clerk, CaseEvent.SUBMIT, items)
        assert counted.wait(JOIN_TIMEOUT), "the bulk never counted a case"
        with transaction(pg) as conn:
            return apply_event(
                conn,
                case_id=contested[i - 1],
                event=CaseEvent.SUBMIT,
                expected_version=1,
                actor=clerk,
                clock=clock,
            )

    listen(pg, "after_cursor_execute", bulk_counted)
    try:
        outcomes = race(fire, n=1 + len(contested))
    finally:
        remove(pg, "after_cursor_execute", bulk_counted)

    by_bulk = outcomes[0]
    assert isinstance(by_bulk, list), by_bulk
    singles = dict(zip(contested, outcomes[1:], strict=True))
    unexpected = {
        c: o for c, o in singles.items() if not isinstance(o, TransitionResult | VersionConflict)
    }
    assert not unexpected, unexpected
    for result in by_bulk:
        single = singles.get(result.id)
        single_won = isinstance(single, TransitionResult)
        assert result.ok != single_won, (result, single)
        if not result.ok:
            assert isinstance(result.error, VersionConflict), result.error
    with pg.connect() as conn:
        moved = conn.execute(
            select(case_t.c.version, func.count())
            .where(case_t.c.id.in_(case_ids))
            .group_by(case_t.c.version)
        ).all()
    assert [tuple(r) for r in moved] == [(2, BEYOND_A_CHUNK)]
    assert broken_chains(pg) == []
    assert counters_match(pg) == []


# -- 5. counters ---------------------------------------------------------------------------------


def test_counters_equal_a_recount_after_bulks_that_change_states(
    db: Engine, clock: ManualClock
) -> None:
    _tree, campaign = weihai(
        db, clock, funds=[{"source": "government", "budget": format_yuan(3 * FIRST_TIER_FEN)}]
    )
    to_submit = [new_case(db, clock, campaign, GRASSROOTS) for _ in range(4)]
    to_approve = final_level_cases(db, clock, campaign, 5)  # money for 3
    with db.connect() as conn:
        waiting = conn.execute(
            select(count_t.c.approval).where(count_t.c.unit_code == CITY)
        ).scalar_one()

    submitted = bulk(
        db, clock, actor_of(db, GRASSROOTS, "clerk"), "submit", [item(db, c) for c in to_submit]
    )
    clock.set(APPROVAL_DAY)
    approved = bulk(
        db,
        clock,
        actor_of(db, CITY, "approver"),
        "approve",
        [item(db, c) for c in to_approve],
        opinion="同意资助",
    )

    assert [r.ok for r in submitted] == [True] * 4
    assert [r.ok for r in approved] == [True] * 3 + [False] * 2
    assert counters_match(db) == []
    with db.connect() as conn:
        city = conn.execute(select(count_t).where(count_t.c.unit_code == CITY)).one()._asdict()
    assert (waiting, city["approval"], city["disbursement"]) == (5, 2, 3)
    assert (city["survey"], city["archive_check"]) == (0, 4)


# -- an item that fails unexpectedly ---------------------------------------------------------------


def test_an_item_that_fails_unexpectedly_is_refused_alone(
    db: Engine, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A row breaking an assumption (a state the lifecycle does not know) is that item's
    internal_error, logged; the items around it are done."""
    _tree, campaign = weihai(db, clock)
    first, broken, last = (new_case(db, clock, campaign, GRASSROOTS) for _ in range(3))
    with transaction(db) as conn:
        conn.execute(update(case_t).where(case_t.c.id == broken).values(state="archived_legacy"))
    items = [item(db, c) for c in (first, broken, last)]

    results = bulk(db, clock, actor_of(db, GRASSROOTS, "clerk"), "submit", items)

    assert outcome(results) == [(first, "ok"), (broken, "internal_error"), (last, "ok")]
    assert results[1].error is not None and results[1].error.status == 500
    assert any(str(broken) in r.getMessage() for r in caplog.records if r.levelname == "ERROR")
    assert case_row(db, broken).state == "archived_legacy"
    assert (case_row(db, first).state, case_row(db, last).state) == ("archive_check",) * 2
