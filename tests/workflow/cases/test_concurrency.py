"""Real threads, each on its own connection and transaction, released together by a barrier.

Two kinds of race:

* "released together": the threads start at one barrier and the database decides who wins,
  on SQLite (writers queue on BEGIN IMMEDIATE) and on PostgreSQL (the `db` fixture).
* "all read before any write" (PostgreSQL only): a second barrier, in a `before_cursor_execute`
  hook, holds every thread just before its first write until all of them have read the same
  row and passed every check in Python. Only the conditional UPDATE (or the unique index) can
  then keep the outcome right, whatever the scheduling: that race is forced, not hoped for.

The tests assert outcomes only, never how long anything took.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import Connection, Engine, event, func, select

from jinqiu.states import CaseEvent, CaseState
from jinqiu.workflow.audit.models import AuditEntry
from jinqiu.workflow.campaigns.models import FundSource
from jinqiu.workflow.cases.counters import counter_differences
from jinqiu.workflow.cases.engine import TransitionResult, apply_event
from jinqiu.workflow.cases.models import Case, Student, Worker
from jinqiu.workflow.cases.schema import CaseCreate
from jinqiu.workflow.cases.service import create_case
from jinqiu.workflow.cases.trail import verify_case_chains
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.driver import defer_transaction
from jinqiu.workflow.errors import DuplicateStudent, InsufficientFunds, VersionConflict
from jinqiu.workflow.money import format_yuan
from tests.factories import (
    actor_of,
    case_in,
    case_row,
    new_case,
    student,
    weihai,
    weihai_amount_fen,
    worker,
)
from tests.workflow.cases.test_engine import CITY, GRASSROOTS, fire

audit_t = AuditEntry.__table__  # type: ignore[attr-defined]
case_t = Case.__table__  # type: ignore[attr-defined]
fund_t = FundSource.__table__  # type: ignore[attr-defined]
worker_t = Worker.__table__  # type: ignore[attr-defined]
student_t = Student.__table__  # type: ignore[attr-defined]

THREADS = 20
JOIN_TIMEOUT = 60.0
UNDERGRADUATE_FIRST_TIER_FEN = weihai_amount_fen()  # what the campaign file gives
# Five grants, not one more.
FIVE_GRANTS = [{"source": "government", "budget": format_yuan(5 * UNDERGRADUATE_FIRST_TIER_FEN)}]


# A data-modifying statement's leading CTE (the engine's `WITH moved AS (UPDATE …) INSERT …` on
# PostgreSQL): the statement's first write is the CTE's.
_WITH = re.compile(r"^WITH\s+\w+\s+AS\s*\(\s*", re.IGNORECASE)


def leading(statement: str) -> str:
    """The statement from its first write on, upper-cased: a leading CTE's opening dropped."""
    return _WITH.sub("", statement.lstrip()).upper()


class Gate:
    """Holds each racing thread before its first statement starting with `prefix` (after a leading
    `WITH name AS (`) until all `parties` threads got there. A thread that finishes without
    reaching it breaks the gate, so the others fail at once instead of waiting for the timeout."""

    def __init__(self, prefix: str, parties: int) -> None:
        self.prefix = prefix.upper()
        self.barrier = threading.Barrier(parties)
        self.reached = 0
        self._lock = threading.Lock()
        self._local = threading.local()

    def before_cursor_execute(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not getattr(self._local, "racing", False) or getattr(self._local, "passed", False):
            return
        if leading(statement).startswith(self.prefix):
            self._local.passed = True
            with self._lock:
                self.reached += 1
            self.barrier.wait(timeout=JOIN_TIMEOUT)

    def enter(self) -> None:
        self._local.racing = True

    def leave(self) -> None:
        if not getattr(self._local, "passed", False):
            self.barrier.abort()


@contextmanager
def gate(engine: Engine, prefix: str, parties: int = THREADS) -> Iterator[Gate]:
    g = Gate(prefix, parties)
    event.listen(engine, "before_cursor_execute", g.before_cursor_execute)
    try:
        yield g
    finally:
        event.remove(engine, "before_cursor_execute", g.before_cursor_execute)


def race(work: Callable[[int], Any], n: int = THREADS, hold: Gate | None = None) -> list[Any]:
    """Runs work(0..n-1) on n threads released together; returns each result or exception."""
    start = threading.Barrier(n)
    outcomes: list[Any] = [None] * n

    def run(i: int) -> None:
        try:
            if hold is not None:
                hold.enter()
            start.wait(timeout=JOIN_TIMEOUT)
            outcomes[i] = work(i)
        except BaseException as exc:
            outcomes[i] = exc
        finally:
            if hold is not None:
                hold.leave()

    threads = [
        threading.Thread(target=run, args=(i,), name=f"racer-{i}", daemon=True) for i in range(n)
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + JOIN_TIMEOUT
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"threads still running after {JOIN_TIMEOUT:.0f} s: {stuck}"
    return outcomes


def split(outcomes: list[Any], expected_error: type[Exception]) -> tuple[list[Any], list[Any]]:
    """(successes, expected errors); any other exception fails the test."""
    errors = [o for o in outcomes if isinstance(o, expected_error)]
    unexpected = [o for o in outcomes if isinstance(o, BaseException) and o not in errors]
    if unexpected:
        raise AssertionError(
            f"{len(unexpected)} unexpected errors: {unexpected!r}"
        ) from unexpected[0]
    return [o for o in outcomes if not isinstance(o, BaseException)], errors


@contextmanager
def racing(engine: Engine, kind: str, prefix: str) -> Iterator[Gate | None]:
    if kind == "released-together":
        yield None
        return
    with gate(engine, prefix) as g:
        yield g
    assert g.reached == THREADS, (
        f"only {g.reached} of {THREADS} threads reached {prefix!r}: the race was not forced"
    )


def audit_rows(engine: Engine, case_id: int | None = None) -> list[Any]:
    query = select(audit_t).order_by(audit_t.c.case_id, audit_t.c.seq)
    if case_id is not None:
        query = query.where(audit_t.c.case_id == case_id)
    with engine.connect() as conn:
        return list(conn.execute(query))


def broken_chains(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [b.describe() for b in verify_case_chains(conn)]


def count(engine: Engine, table: Any, *where: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


# -- one case, one version, twenty writers ------------------------------------------------------


@contextmanager
def unit_of_work(engine: Engine, *, alone: bool) -> Iterator[Connection]:
    """A transaction; `alone`: one whose transaction waits for its first write, as an event
    request's does on PostgreSQL (a transition that is all it writes goes as one statement)."""
    with transaction(engine) as conn:
        if alone:
            defer_transaction(conn)
        yield conn


def committed_already(conn: Connection) -> bool:
    """Whether the transition just fired was sent alone: the server committed it as it ended,
    and the driver is in no transaction (PostgreSQL; SQLite: never)."""
    if conn.dialect.name != "postgresql":
        return False
    driver = conn.connection.driver_connection
    return driver.info.transaction_status == TransactionStatus.IDLE  # type: ignore[union-attr]


def same_event_same_version(
    engine: Engine, clock: ManualClock, hold: Gate | None, *, alone: bool = False
) -> None:
    _tree, campaign = weihai(engine, clock)
    case_id = new_case(engine, clock, campaign, GRASSROOTS)
    clerk = actor_of(engine, GRASSROOTS, "clerk")
    before = case_row(engine, case_id)
    assert (before.state, before.version, len(audit_rows(engine, case_id))) == ("survey", 1, 1)

    def submit(_i: int) -> TransitionResult:
        with unit_of_work(engine, alone=alone) as conn:
            fired = apply_event(
                conn,
                case_id=case_id,
                event=CaseEvent.SUBMIT,
                expected_version=before.version,
                actor=clerk,
                clock=clock,
            )
            assert committed_already(conn) == alone
            return fired

    won, conflicts = split(race(submit, hold=hold), VersionConflict)

    assert len(won) == 1 and len(conflicts) == THREADS - 1
    after = case_row(engine, case_id)
    assert (after.state, after.version, after.audit_seq) == ("archive_check", 2, 2)
    assert won[0].version == after.version
    entries = audit_rows(engine, case_id)
    assert [(e.seq, e.event) for e in entries] == [(1, "create"), (2, "submit")]
    assert after.audit_head == entries[-1].hash
    assert broken_chains(engine) == []
    with engine.connect() as conn:
        assert counter_differences(conn) == []


def test_twenty_submits_of_one_case_at_one_version_one_wins(db: Engine, clock: ManualClock) -> None:
    """On SQLite and PostgreSQL: one success, 19 conflicts, one audit entry, one new version."""
    same_event_same_version(db, clock, hold=None)


@pytest.mark.postgres
def test_twenty_submits_all_past_the_version_check_still_one_wins(
    pg: Engine, clock: ManualClock
) -> None:
    """All 20 read version 1 and pass every check; `WHERE version = :expected` decides."""
    with racing(pg, "all-read-before-any-write", "UPDATE aid_case") as hold:
        same_event_same_version(pg, clock, hold=hold)


@pytest.mark.postgres
def test_twenty_submits_written_alone_all_past_the_version_check_still_one_wins(
    pg: Engine, clock: ManualClock
) -> None:
    """The same race with each transition sent as its request's one statement (row, audit entry
    and counters, committed by the server as it ends): the UPDATE's version check inside it
    decides, and the losers' statements write no entry and count nothing."""
    with racing(pg, "all-read-before-any-write", "UPDATE aid_case") as hold:
        same_event_same_version(pg, clock, hold=hold, alone=True)


@pytest.mark.postgres
def test_moves_written_alone_and_in_transactions_all_count_in_one_unit(
    pg: Engine, clock: ManualClock
) -> None:
    """Twenty cases of one union submitted at once, every other one as its request's one
    statement and the rest in transactions that count at their commit: they share the counter
    rows of the union and every union above it, locked in the same order by both, so every
    submit succeeds (no deadlock) and the counters say what a recount says."""
    _tree, campaign = weihai(pg, clock)
    cases = [new_case(pg, clock, campaign, GRASSROOTS) for _ in range(THREADS)]
    clerk = actor_of(pg, GRASSROOTS, "clerk")

    def submit(i: int) -> TransitionResult:
        with unit_of_work(pg, alone=i % 2 == 0) as conn:
            fired = apply_event(
                conn,
                case_id=cases[i],
                event=CaseEvent.SUBMIT,
                expected_version=1,
                actor=clerk,
                clock=clock,
            )
            assert committed_already(conn) == (i % 2 == 0)
            return fired

    won, _none = split(race(submit), VersionConflict)
    assert sorted(r.id for r in won) == sorted(cases)
    assert {case_row(pg, c).state for c in cases} == {CaseState.ARCHIVE_CHECK}
    with pg.connect() as conn:
        assert counter_differences(conn, campaign) == []
    assert broken_chains(pg) == []


# -- twenty final approvals, money for five -------------------------------------------------


def cases_awaiting_city_approval(
    engine: Engine, clock: ManualClock, campaign: int, n: int
) -> list[int]:
    """Cases whose grassroots and district approvals are done (made by the factory)."""
    clock.set(dt.datetime(2024, 8, 9, 10))
    return [
        case_in(engine, clock, campaign, GRASSROOTS, CaseState.APPROVAL, approved=2)
        for _ in range(n)
    ]


def test_twenty_final_approvals_against_money_for_five(db: Engine, clock: ManualClock) -> None:
    """On SQLite and PostgreSQL: 5 approvals fit the budget, 15 are refused, nothing overdrawn."""
    final_approvals_against_money_for_five(db, clock, "released-together")


@pytest.mark.postgres
def test_twenty_final_approvals_all_past_their_checks_still_pay_only_five(
    pg: Engine, clock: ManualClock
) -> None:
    """All 20 pass every check before any reserves; `budget - reserved - paid >= amount` decides."""
    final_approvals_against_money_for_five(pg, clock, "all-read-before-any-write")


def final_approvals_against_money_for_five(db: Engine, clock: ManualClock, kind: str) -> None:
    _tree, campaign = weihai(db, clock, funds=FIVE_GRANTS)
    case_ids = cases_awaiting_city_approval(db, clock, campaign, THREADS)
    before = {c: case_row(db, c) for c in case_ids}
    assert {(r.state, r.approval_step) for r in before.values()} == {("approval", 2)}
    city = actor_of(db, CITY, "approver")

    def approve(i: int) -> TransitionResult:
        case_id = case_ids[i]
        with transaction(db) as conn:
            return apply_event(
                conn,
                case_id=case_id,
                event=CaseEvent.APPROVE,
                expected_version=before[case_id].version,
                actor=city,
                clock=clock,
                opinion="审批同意资助",
            )

    with racing(db, kind, "UPDATE fund_source") as hold:
        won, refused = split(race(approve, hold=hold), InsufficientFunds)

    assert (len(won), len(refused)) == (5, THREADS - 5)
    with db.connect() as conn:
        fund = conn.execute(select(fund_t).where(fund_t.c.campaign_id == campaign)).one()
    assert fund.budget_fen == 5 * UNDERGRADUATE_FIRST_TIER_FEN
    assert (fund.reserved_fen, fund.paid_fen) == (5 * UNDERGRADUATE_FIRST_TIER_FEN, 0)

    after = {c: case_row(db, c) for c in case_ids}
    paid_for = {r.id for r in won}
    assert {c for c, r in after.items() if r.state == "disbursement"} == paid_for
    for c, row in after.items():
        if c in paid_for:
            assert (row.approved_amount_fen, row.fund_source_id) == (
                UNDERGRADUATE_FIRST_TIER_FEN,
                fund.id,
            )
            assert (row.version, row.audit_seq) == (before[c].version + 1, before[c].audit_seq + 1)
        else:  # refused: untouched, still waiting for the city
            assert (row.state, row.approval_step, row.approved_amount_fen, row.fund_source_id) == (
                "approval",
                2,
                None,
                None,
            )
            assert (row.version, row.audit_seq) == (before[c].version, before[c].audit_seq)
    assert count(db, case_t, case_t.c.state == "approval", case_t.c.approval_step == 2) == 15
    assert count(db, case_t, case_t.c.state == "disbursement") == 5
    approvals_by_city = [
        e for e in audit_rows(db) if e.event == "approve" and e.to_state == "disbursement"
    ]
    assert sorted(e.case_id for e in approvals_by_city) == sorted(paid_for)
    # The trail says what each winner reserved and from which source: the fund's five grants
    # reserved are accounted for case by case, and no loser's attempt left an entry.
    assert sorted(
        (e.case_id, e.data["amount"], e.data["fund_source"]) for e in approvals_by_city
    ) == [(c, format_yuan(UNDERGRADUATE_FIRST_TIER_FEN), "government") for c in sorted(paid_for)]
    assert broken_chains(db) == []


# -- twenty clerks file the same student ----------------------------------------------------


def test_twenty_applications_for_one_student_make_one_case(db: Engine, clock: ManualClock) -> None:
    """On SQLite and PostgreSQL: one case, 19 DuplicateStudent, nothing left of the losers."""
    applications_for_one_student(db, clock, "released-together")


@pytest.mark.postgres
def test_twenty_applications_all_past_the_duplicate_check_still_make_one_case(
    pg: Engine, clock: ManualClock
) -> None:
    """All 20 find no active case and insert; the partial unique index decides."""
    applications_for_one_student(pg, clock, "all-read-before-any-write")


def applications_for_one_student(db: Engine, clock: ManualClock, kind: str) -> None:
    _tree, campaign = weihai(db, clock)
    clerk = actor_of(db, GRASSROOTS, "clerk")
    spec = CaseCreate.model_validate(
        {"campaign": campaign, "unit": GRASSROOTS, "worker": worker(), "student": student()}
    )
    number = spec.student.id_number

    def create(_i: int) -> int:
        with transaction(db) as conn:
            return create_case(conn, spec, actor=clerk, clock=clock)

    with racing(db, kind, "INSERT INTO aid_case") as hold:
        won, duplicates = split(race(create, hold=hold), DuplicateStudent)

    assert (len(won), len(duplicates)) == (1, THREADS - 1)
    case_id = won[0]
    # The losers rolled back everything, the worker and student rows they wrote too.
    assert count(db, case_t) == 1
    assert count(db, case_t, case_t.c.student_id_number == number) == 1
    assert (count(db, worker_t), count(db, student_t), count(db, audit_t)) == (1, 1, 1)
    row = case_row(db, case_id)
    assert (row.state, row.version, row.audit_seq) == ("survey", 1, 1)
    assert broken_chains(db) == []

    fire(db, clock, case_id, "withdraw", clerk)
    assert case_row(db, case_id).state == "withdrawn"
    with transaction(db) as conn:
        again = create_case(conn, spec, actor=clerk, clock=clock)
    assert again != case_id
    assert case_row(db, again).state == "survey"
    with pytest.raises(DuplicateStudent), transaction(db) as conn:
        create_case(conn, spec, actor=clerk, clock=clock)
    assert count(db, case_t, case_t.c.student_id_number == number) == 2
    assert broken_chains(db) == []
