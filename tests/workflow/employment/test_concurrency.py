"""Real threads against PostgreSQL, each on its own connection and transaction, released
together by a barrier: help recorded at once on one record is all kept, each entry chained
once (the record's row is held while its entry is chained); a graduate registered at once by
several clerks gets one record; one case added to a post at once is on it once. Outcomes only,
never timings."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select, text

from jinqiu.states import CaseState
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.employment import service
from jinqiu.workflow.employment.engine import help_t, participant_t, record_t
from jinqiu.workflow.employment.trail import verify_record_chains
from jinqiu.workflow.errors import DomainError
from jinqiu.workflow.units.models import Unit
from tests.factories import actor_of, case_in, weihai
from tests.workflow.publicity_lists.test_concurrency import race

THREADS = 8
unit_t = Unit.__table__  # type: ignore[attr-defined]


def test_help_recorded_at_once_is_all_kept_and_chained(pg: Engine, clock: ManualClock) -> None:
    _tree, campaign = weihai(pg, clock)
    paid = case_in(pg, clock, campaign, "WH-HC-001", CaseState.FOLLOW_UP)
    clerk = actor_of(pg, "WH-HC-001", "clerk")
    with transaction(pg) as conn:
        row = conn.execute(text("SELECT id, year FROM campaign WHERE id = :c"), {"c": campaign})
        record = service.register(
            conn, campaign=row.one(), case_id=paid, graduation_year=2024, school="某大学",
            major=None, studies_locally=False, actor=clerk, clock=clock,
        )  # fmt: skip

    def give() -> int:
        with transaction(pg) as conn:
            return service.record_help(
                conn, record, kind="training", given_on=None, text=None, amount_fen=None,
                actor=clerk, clock=clock,
            )  # fmt: skip

    results = race(THREADS, give)
    assert all(isinstance(r, int) for r in results), results
    with pg.connect() as conn:
        assert conn.execute(select(func.count()).select_from(help_t)).scalar_one() == THREADS
        version, seq = conn.execute(
            select(record_t.c.version, record_t.c.audit_seq).where(record_t.c.id == record)
        ).one()
        assert (version, seq) == (1 + THREADS, 1 + THREADS)
        assert list(verify_record_chains(conn)) == []


def test_one_record_per_case_and_one_place_per_post(pg: Engine, clock: ManualClock) -> None:
    _tree, campaign = weihai(pg, clock)
    paid = case_in(pg, clock, campaign, "WH-HC-001", CaseState.FOLLOW_UP)
    clerk = actor_of(pg, "WH-HC-001", "clerk")
    with transaction(pg) as conn:
        year = conn.execute(text("SELECT id, year FROM campaign WHERE id = :c"), {"c": campaign})
        the_campaign = year.one()
        unit = conn.execute(select(unit_t).where(unit_t.c.code == "WH-HC-001")).one()
        post = service.open_post(
            conn, campaign_id=campaign, unit=unit, title="助理", employer="图书馆", kind="campus",
            hours_per_week=6, hourly_pay_fen=1800, actor=clerk, clock=clock,
        )  # fmt: skip

    def register() -> Any:
        with transaction(pg) as conn:
            return service.register(
                conn, campaign=the_campaign, case_id=paid, graduation_year=2024, school="某大学",
                major=None, studies_locally=False, actor=clerk, clock=clock,
            )  # fmt: skip

    def join() -> Any:
        with transaction(pg) as conn:
            return service.add_participant(conn, post, case_id=paid, actor=clerk, clock=clock)

    for attempt, table in ((register, record_t), (join, participant_t)):
        results = race(THREADS, attempt)
        won = [r for r in results if isinstance(r, int)]
        assert len(won) == 1, results
        # The losers are refused as the contract says (409), not with a database error.
        assert all(isinstance(r, DomainError) and r.status == 409 for r in results if r not in won)
        with pg.connect() as conn:
            assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 1
