"""Issue 9, item 1: the case machine is one declaration in states/, and everything else reads it.

* no state or event name is spelled in the service's Python outside states/ (an AST scan);
* a work queue is what the engine offers: a case is in an actor's queue exactly when the engine
  allows the actor an event that moves it on (the queue used to be a hand-written role map);
* the states declared as "ended without aid" are exactly those the one-application index of
  the database lets a student apply again from;
* the factory that creates a case directly in any state leaves it as the engine would have:
  version, audit chain, counters and funds all consistent.

On SQLite and PostgreSQL where the database is involved."""

from __future__ import annotations

import ast
import datetime as dt
import pkgutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

import jinqiu.states
from jinqiu.api.pages import bulk_events_for, queue_filter
from jinqiu.states import MACHINE, CaseState, Machine
from jinqiu.states.case_lifecycle import history_to
from jinqiu.workflow.campaigns.models import FundSource
from jinqiu.workflow.cases.counters import recount, stored
from jinqiu.workflow.cases.engine import allowed_events, load_context
from jinqiu.workflow.cases.reads import CaseFilter, list_cases
from jinqiu.workflow.cases.trail import verify_case_chains
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.errors import DuplicateStudent
from jinqiu.workflow.identity import make_id_number
from jinqiu.workflow.roles import Actor
from tests.factories import actor_of, case_in, case_row, new_case, weihai
from tests.snapshots import Kept

ROOT = Path(__file__).resolve().parents[2]
S = CaseState
GRASSROOTS, DISTRICT, CITY = "WH-HC-001", "WH-HC", "WH"
fund_t = FundSource.__table__  # type: ignore[attr-defined]


# -- no lifecycle names outside states/ ---------------------------------------------------------

# Where the service's code lives; states/ (the declaration), migrations (they freeze the schema
# of their day), templates and tests may name states and events.
SCANNED = ("api", "workflow", "notifications", "demo", "bench")
# A string equal to a lifecycle name that is not one, and why.
NOT_LIFECYCLE_NAMES = {
    ("api/cli/__init__.py", "verify"): "`jinqiu audit verify`, `jinqiu counters verify`: commands",
    ("api/http/forms.py", "publicity"): "the evidence bundle's record of publicity lists, a key",
    ("workflow/forms/evidence.py", "publicity"): "the same record, a key of the bundle",
    ("workflow/survey/service.py", "registered"): "an import report's count of register rows",
    ("bench/http.py", "follow_up"): "the campaign file's follow-up rule, a key of the file",
}


def declared_machines() -> list[Machine[Any, Any, Any]]:
    """Every machine declared in a module of states/."""
    found: dict[int, Machine[Any, Any, Any]] = {}
    for info in pkgutil.iter_modules(jinqiu.states.__path__, "jinqiu.states."):
        module = __import__(info.name, fromlist=["_"])
        for value in vars(module).values():
            if isinstance(value, Machine):
                found[id(value)] = value
    return list(found.values())


def lifecycle_names() -> set[str]:
    return {
        str(name)
        for machine in declared_machines()
        for name in (*machine.state_names, *machine.events)
    }


def docstrings(tree: ast.AST) -> set[int]:
    """Docstrings are prose about the lifecycle and may name it; code strings may not."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def spelled_names(names: set[str]) -> list[tuple[str, int, str]]:
    """(file, line, name) of every string constant that is a lifecycle name, or quotes one as
    an SQL literal ('closed'), in the scanned folders."""
    hits = []
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith("workflow/migrations/"):
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            prose = docstrings(tree)
            for node in ast.walk(tree):
                if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
                    continue
                if id(node) in prose:
                    continue
                for name in names:
                    if node.value == name or f"'{name}'" in node.value:
                        hits.append((rel, node.lineno, name))
    return hits


def test_no_state_or_event_name_is_spelled_outside_states() -> None:
    names = lifecycle_names()
    assert {"archive_check", "follow_up", "withdrawn", "payment_failed", "approve"} <= names
    hits = spelled_names(names)
    unexplained = [h for h in hits if (h[0], h[2]) not in NOT_LIFECYCLE_NAMES]
    assert unexplained == [], "name them through states/ (MACHINE, CaseState, CaseEvent)"
    still_there = {(f, name) for f, _line, name in hits}
    assert set(NOT_LIFECYCLE_NAMES) <= still_there, "an exception no longer needed"


def test_the_scan_finds_a_name_in_code_and_in_sql_but_not_in_a_docstring(tmp_path: Path) -> None:
    source = (
        '"""Cases go survey → archive_check."""\n'
        'LABELS = {"follow_up": "回访"}\n'
        "SQL = \"UPDATE aid_case SET state = 'closed'\"\n"
    )
    tree = ast.parse(source)
    prose = docstrings(tree)
    strings = [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and id(n) not in prose]
    found = {
        name
        for n in strings
        for name in lifecycle_names()
        if isinstance(n.value, str) and (n.value == name or f"'{name}'" in n.value)
    }
    assert found == {"follow_up", "closed"}


# -- the work queue is what the engine offers -----------------------------------------------------


@pytest.fixture
def every_state(db: Engine, clock: ManualClock, kept: Kept) -> tuple[int, dict[int, str]]:
    """One case of WH-HC-001 in every state, and in approval one at each of the three levels.
    Built once per database for the module; the tests only read it."""

    def seed() -> tuple[int, dict[int, str]]:
        _tree, campaign = weihai(db, clock)
        clock.set(dt.datetime(2024, 8, 9, 10))
        cases: dict[int, str] = {}
        for state in CaseState:
            for approved in range(3) if state in MACHINE.level_states else (0,):
                case_id = case_in(db, clock, campaign, GRASSROOTS, state, approved=approved)
                cases[case_id] = f"{state.value}@{approved}"
        return campaign, cases

    seeded = kept.seeded(db, seed)
    clock.set(dt.datetime(2024, 8, 9, 10))
    return seeded


ACTORS = [
    (GRASSROOTS, "clerk"),
    (GRASSROOTS, "approver"),
    (DISTRICT, "reviewer"),
    (DISTRICT, "approver"),
    (CITY, "approver"),
    (CITY, "finance"),
    (CITY, "manager"),
    (CITY, "auditor"),
]


def moves_on(actor: Actor, db: Engine, case_id: int) -> bool:
    """The engine offers the actor an event that moves this case on."""
    with db.connect() as conn:
        facts, _row = load_context(conn, case_id, today=dt.date(2024, 8, 9))
    state = facts.case.state
    return any(
        MACHINE.forward(t, state)
        for event in allowed_events(actor, facts.case, facts.campaign)
        for t in MACHINE.candidates(state, event)
    )


@pytest.mark.parametrize(("unit", "role"), ACTORS)
def test_a_case_is_in_the_queue_exactly_when_the_engine_lets_the_actor_move_it_on(
    db: Engine, every_state: tuple[int, dict[int, str]], unit: str, role: str
) -> None:
    campaign, cases = every_state
    actor = actor_of(db, unit, role)
    states, step = queue_filter(actor, ["grassroots", "district", "city"])
    with db.connect() as conn:
        rows, _total = list_cases(
            conn,
            actor,
            CaseFilter(
                campaign=campaign,
                states=states,
                approval_step=step,
                step_states=MACHINE.level_states,
                page_size=100,
            ),
            today=dt.date(2024, 8, 9),
        )
    queued = sorted(cases[r["id"]] for r in rows)
    movable = sorted(cases[c] for c in cases if moves_on(actor, db, c))
    if movable:
        assert queued == movable
    else:  # moves nothing on (an auditor): sees every open case
        assert queued == sorted(
            label for label in cases.values() if label.split("@")[0] in MACHINE.open_states
        )


@pytest.mark.parametrize(("unit", "role"), ACTORS)
def test_bulk_buttons_offer_only_events_the_actor_may_fire_on_the_queue(
    db: Engine, unit: str, role: str, clock: ManualClock
) -> None:
    weihai(db, clock)
    actor = actor_of(db, unit, role)
    states, _step = queue_filter(actor, ["grassroots", "district", "city"])
    offered = bulk_events_for(actor, states)
    for event in offered:
        assert any(
            t.bulk and actor.may(t.permission) for s in states for t in MACHINE.candidates(s, event)
        ), event
    if role == "approver":
        assert "approve" in offered


# -- ended without aid: the student may apply again --------------------------------------------


@pytest.mark.parametrize("state", list(CaseState))
def test_only_a_case_ended_without_aid_frees_the_student_for_another_application(
    db: Engine, clock: ManualClock, state: CaseState
) -> None:
    """The one-application index of the database (a migration) and the declaration agree."""
    _tree, campaign = weihai(db, clock)
    number = make_id_number("371002", dt.date(2006, 5, 17), 7)
    case_in(db, clock, campaign, GRASSROOTS, state, student_changes={"id_number": number})
    if state in MACHINE.ended_without_aid:
        new_case(db, clock, campaign, DISTRICT + "-002", student_changes={"id_number": number})
    else:
        with pytest.raises(DuplicateStudent):
            new_case(db, clock, campaign, DISTRICT + "-002", student_changes={"id_number": number})


# -- the factory ------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", list(CaseState))
def test_a_factory_case_is_as_the_engine_would_leave_it(
    db: Engine, clock: ManualClock, state: CaseState
) -> None:
    _tree, campaign = weihai(db, clock)
    case_id = case_in(db, clock, campaign, GRASSROOTS, state)
    row = case_row(db, case_id)
    history = history_to(state, levels=3)
    assert (row.state, row.version, row.audit_seq) == (state, 1 + len(history), 1 + len(history))
    effects = {e for t in history for e in t.effects}
    assert (row.publicity_ends_on is not None) == ("start_publicity" in effects)
    assert (row.approved_amount_fen is not None) == ("reserve_aid" in effects)
    assert (row.paid_on is not None) == ("record_payment" in effects)
    with db.connect() as conn:
        assert list(verify_case_chains(conn)) == []
        assert recount(conn, campaign) == stored(conn, campaign)
        funds = conn.execute(select(fund_t.c.reserved_fen, fund_t.c.paid_fen)).all()
    reserved, paid = sum(f.reserved_fen for f in funds), sum(f.paid_fen for f in funds)
    amount = row.approved_amount_fen or 0
    if row.paid_on:
        assert (reserved, paid) == (0, amount)
    elif "release_reservation" in effects:  # cancelled: the reservation went back
        assert (reserved, paid) == (0, 0)
    else:
        assert (reserved, paid) == (amount, 0)


def test_a_factory_case_in_approval_waits_at_the_level_asked_for_and_the_engine_goes_on(
    db: Engine, clock: ManualClock
) -> None:
    _tree, campaign = weihai(db, clock)
    case_id = case_in(db, clock, campaign, GRASSROOTS, S.APPROVAL, approved=2)
    with db.connect() as conn:
        facts, _row = load_context(conn, case_id, today=dt.date(2024, 8, 9))
    assert facts.case.pending_step() == 2
    city = actor_of(db, CITY, "approver")
    assert "approve" in allowed_events(city, facts.case, facts.campaign)
    assert allowed_events(actor_of(db, DISTRICT, "approver"), facts.case, facts.campaign) == []
    with pytest.raises(ValueError, match="past approval"):
        case_in(db, clock, campaign, GRASSROOTS, S.APPROVAL, approved=3)
