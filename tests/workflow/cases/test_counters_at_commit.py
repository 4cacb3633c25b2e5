"""A transition's counter deltas are written by its commit (workflow/cases/counters.py): the
ancestors' rows, which every transition of a campaign shares, are locked only while the
commit runs. What that must not change: a read in the same transaction sees the move, a
rolled-back savepoint takes its moves back, a failed write leaves nothing — and what it is for:
an open transition no longer holds the city's counters against every other one."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Connection, Engine, exc, select, text

from jinqiu.states import CaseEvent, CaseState
from jinqiu.workflow.cases.counters import counter_differences, counts_for
from jinqiu.workflow.cases.engine import apply_event
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.dashboard.service import DashboardQuery, dashboard
from jinqiu.workflow.db import transaction
from tests.factories import actor_of, new_case, weihai

case_t = Case.__table__  # type: ignore[attr-defined]
CITY, DISTRICT = "WH", "WH-HC"
GRASSROOTS, OTHER_GRASSROOTS = "WH-HC-001", "WH-WD-001"


def submit(conn: Connection, case_id: int, unit: str, engine: Engine, clock: ManualClock) -> None:
    apply_event(
        conn,
        case_id=case_id,
        event=CaseEvent.SUBMIT,
        expected_version=1,
        actor=actor_of(engine, unit, "clerk"),
        clock=clock,
    )


def city_counts(engine: Engine, campaign: int) -> dict[str, int]:
    with engine.connect() as conn:
        return counts_for(conn, campaign, [CITY])[CITY]


def test_a_read_in_the_same_transaction_sees_the_move(db: Engine, clock: ManualClock) -> None:
    _tree, campaign = weihai(db, clock)
    case_id = new_case(db, clock, campaign, GRASSROOTS)
    before = city_counts(db, campaign)
    with transaction(db) as conn:
        submit(conn, case_id, GRASSROOTS, db, clock)
        inside = counts_for(conn, campaign, [CITY, DISTRICT])
        assert counter_differences(conn, campaign) == []
    assert inside[CITY].get(CaseState.SURVEY.value, 0) == before[CaseState.SURVEY.value] - 1
    assert inside[DISTRICT][CaseState.ARCHIVE_CHECK.value] == 1
    assert city_counts(db, campaign) == inside[CITY]  # written once, not again at the commit


def test_a_dashboard_in_the_same_transaction_sees_the_move(db: Engine, clock: ManualClock) -> None:
    """The dashboard reads the counters with its own statement: it writes the pending moves
    first, as counts_for does."""
    _tree, campaign = weihai(db, clock)
    case_id = new_case(db, clock, campaign, GRASSROOTS)
    manager = actor_of(db, CITY, "manager")
    with transaction(db) as conn:
        submit(conn, case_id, GRASSROOTS, db, clock)
        board = dashboard(conn, DashboardQuery(campaign, CITY), manager, today=clock.now().date())
    district = next(u for u in board["units"] if u["code"] == DISTRICT)
    assert board["states"][CaseState.ARCHIVE_CHECK.value] == 1
    assert district["states"] == {CaseState.ARCHIVE_CHECK.value: 1}


def test_a_rolled_back_savepoint_takes_its_moves_back(db: Engine, clock: ManualClock) -> None:
    _tree, campaign = weihai(db, clock)
    kept, undone, nested = (new_case(db, clock, campaign, GRASSROOTS) for _ in range(3))
    with transaction(db) as conn:
        submit(conn, kept, GRASSROOTS, db, clock)
        savepoint = conn.begin_nested()
        submit(conn, undone, GRASSROOTS, db, clock)
        savepoint.rollback()
        with conn.begin_nested():  # a released savepoint keeps its moves
            submit(conn, undone, GRASSROOTS, db, clock)
        outer = conn.begin_nested()
        with conn.begin_nested():  # released into the outer one, which is rolled back
            submit(conn, nested, GRASSROOTS, db, clock)
        outer.rollback()
    counts = city_counts(db, campaign)
    assert counts.get(CaseState.ARCHIVE_CHECK.value) == 2
    assert counts.get(CaseState.SURVEY.value) == 1
    with db.connect() as conn:
        assert counter_differences(conn, campaign) == []


def test_a_rolled_back_transaction_leaves_nothing_for_the_next(
    db: Engine, clock: ManualClock
) -> None:
    """The deltas live on the pooled connection: the next transaction on it starts without them."""
    _tree, campaign = weihai(db, clock)
    case_id = new_case(db, clock, campaign, GRASSROOTS)
    with db.connect() as conn:
        with conn.begin():
            submit(conn, case_id, GRASSROOTS, db, clock)
            conn.rollback()
        with conn.begin():
            conn.execute(select(1))
    assert city_counts(db, campaign).get(CaseState.ARCHIVE_CHECK.value, 0) == 0
    with db.connect() as conn:
        assert counter_differences(conn, campaign) == []


@pytest.mark.postgres
def test_a_failed_counter_write_fails_the_commit_and_leaves_nothing(
    pg: Engine, clock: ManualClock
) -> None:
    """The upsert goes with the COMMIT: when it fails, the commit raises SQLAlchemy's error (as a
    failed statement would) and the case has not moved."""
    _tree, campaign = weihai(pg, clock)
    case_id = new_case(pg, clock, campaign, GRASSROOTS)
    with pg.begin() as conn:
        conn.execute(
            text(
                "CREATE FUNCTION refuse_counts() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'counters refused'; END $$"
            )
        )
        conn.execute(
            text(
                "CREATE TRIGGER refuse_counts BEFORE INSERT OR UPDATE ON unit_case_count "
                "FOR EACH ROW EXECUTE FUNCTION refuse_counts()"
            )
        )
    try:
        with (
            pytest.raises(exc.DBAPIError, match="counters refused"),
            transaction(pg) as conn,
        ):
            submit(conn, case_id, GRASSROOTS, pg, clock)
    finally:
        with pg.begin() as conn:
            conn.execute(text("DROP TRIGGER refuse_counts ON unit_case_count"))
            conn.execute(text("DROP FUNCTION refuse_counts()"))
    with pg.connect() as conn:
        row = conn.execute(select(case_t.c.state, case_t.c.version).where(case_t.c.id == case_id))
        assert tuple(row.one()) == (CaseState.SURVEY.value, 1)
        assert counter_differences(conn, campaign) == []
    with transaction(pg) as conn:  # the pooled connection is usable again
        submit(conn, case_id, GRASSROOTS, pg, clock)
    assert city_counts(pg, campaign).get(CaseState.ARCHIVE_CHECK.value) == 1


@pytest.mark.postgres
def test_an_open_transition_does_not_hold_the_city_counters_against_another(
    pg: Engine, clock: ManualClock
) -> None:
    """Two cases of two districts share only the city's counter rows. While the first
    transition is moved but not committed, the second commits at once: its commit does not wait
    for the first's lock on the city's rows (lock_timeout 2 s would end it). Both counted."""
    _tree, campaign = weihai(pg, clock)
    first = new_case(pg, clock, campaign, GRASSROOTS)
    second = new_case(pg, clock, campaign, OTHER_GRASSROOTS)
    moved, committed = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def hold_open() -> None:
        try:
            with transaction(pg) as conn:
                submit(conn, first, GRASSROOTS, pg, clock)
                moved.set()
                assert committed.wait(30), "the second transition never committed"
        except BaseException as error:
            errors.append(error)
            moved.set()

    holder = threading.Thread(target=hold_open)
    holder.start()
    try:
        assert moved.wait(30)
        with transaction(pg) as conn:
            conn.execute(text("SET LOCAL lock_timeout = '2s'"))
            submit(conn, second, OTHER_GRASSROOTS, pg, clock)
        committed.set()
    finally:
        committed.set()
        holder.join(30)
    assert errors == []
    assert city_counts(pg, campaign).get(CaseState.ARCHIVE_CHECK.value) == 2
    with pg.connect() as conn:
        assert counter_differences(conn, campaign) == []
