"""Real threads against PostgreSQL, each on its own connection and transaction, released
together by a barrier: a list is published once and ended once however many try, and an
objection racing the end either holds the list or is refused — never both, never neither.
Outcomes only, never timings."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, func, select

from jinqiu.states import CaseState
from jinqiu.states.publicity_list import ListState
from jinqiu.workflow.audit.models import AuditEntry
from jinqiu.workflow.cases.counters import recount, stored
from jinqiu.workflow.cases.trail import verify_case_chains
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.errors import DomainError
from jinqiu.workflow.publicity import end_due_publicity
from jinqiu.workflow.publicity_lists.models import PublicityList, PublicityListAudit
from jinqiu.workflow.publicity_lists.service import build_list, publish_list, record_objection
from jinqiu.workflow.units.models import Unit
from tests.factories import actor_of, case_in, weihai

THREADS = 8
audit_t = AuditEntry.__table__  # type: ignore[attr-defined]
list_t = PublicityList.__table__  # type: ignore[attr-defined]
list_audit_t = PublicityListAudit.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
DISTRICT = "WH-HC"


def race(n: int, attempt: Callable[[], Any]) -> list[Any]:
    """Runs `attempt` in n threads released together; each result or the DomainError raised."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = attempt()
        except DomainError as refused:
            results[i] = refused

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def a_draft(pg: Engine, clock: ManualClock, cases: int) -> tuple[int, int, list[int]]:
    _tree, campaign = weihai(pg, clock)
    ids = [case_in(pg, clock, campaign, "WH-HC-001", CaseState.READY_FOR_PUBLICITY)
           for _ in range(cases)]  # fmt: skip
    clock.set(dt.datetime(2024, 8, 12, 9))
    reviewer = actor_of(pg, DISTRICT, "reviewer")
    with transaction(pg) as conn:
        unit = conn.execute(select(unit_t).where(unit_t.c.code == DISTRICT)).one()
        list_id = build_list(conn, campaign_id=campaign, unit=unit, actor=reviewer, clock=clock)
    return campaign, list_id, ids


def events_of(pg: Engine, case_ids: list[int], event: str) -> int:
    with pg.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(audit_t)
                .where(audit_t.c.case_id.in_(case_ids), audit_t.c.event == event)
            ).scalar_one()
        )


def consistent(pg: Engine, campaign: int) -> None:
    with pg.connect() as conn:
        assert list(verify_case_chains(conn)) == []
        assert recount(conn, campaign) == stored(conn, campaign)


def test_concurrent_publishes_publish_the_list_once(pg: Engine, clock: ManualClock) -> None:
    campaign, list_id, cases = a_draft(pg, clock, 30)
    reviewer = actor_of(pg, DISTRICT, "reviewer")

    def publish() -> Any:
        with transaction(pg) as conn:
            return publish_list(conn, list_id, actor=reviewer, clock=clock)

    results = race(THREADS, publish)
    won = [r for r in results if not isinstance(r, DomainError)]
    assert len(won) == 1, results
    assert {r.code for r in results if isinstance(r, DomainError)} <= {
        "event_not_allowed", "version_conflict"
    }  # fmt: skip
    assert events_of(pg, cases, "publish") == len(cases)
    with pg.connect() as conn:
        entries = (
            conn.execute(select(list_audit_t.c.event).where(list_audit_t.c.list_id == list_id))
            .scalars()
            .all()
        )
    assert entries == ["create", "publish"]
    consistent(pg, campaign)


def test_concurrent_sweeps_end_the_list_once(pg: Engine, clock: ManualClock) -> None:
    campaign, list_id, cases = a_draft(pg, clock, 30)
    reviewer = actor_of(pg, DISTRICT, "reviewer")
    with transaction(pg) as conn:
        published = publish_list(conn, list_id, actor=reviewer, clock=clock)
    clock.set(dt.datetime.combine(published.ends_on + dt.timedelta(days=1), dt.time(8)))

    results = race(THREADS, lambda: end_due_publicity(pg, clock))
    assert sum(len(r.lists.ended) for r in results) == 1
    assert sorted(c for r in results for c in r.ended) == sorted(cases)
    assert all(not r.failures for r in results)
    assert events_of(pg, cases, "end_publicity") == len(cases)
    with pg.connect() as conn:
        state = conn.execute(select(list_t.c.state).where(list_t.c.id == list_id)).scalar_one()
    assert state == ListState.ENDED
    consistent(pg, campaign)


def test_an_objection_racing_the_end_holds_the_list_or_is_refused(
    pg: Engine, clock: ManualClock
) -> None:
    campaign, list_id, cases = a_draft(pg, clock, 10)
    reviewer = actor_of(pg, DISTRICT, "reviewer")
    with transaction(pg) as conn:
        published = publish_list(conn, list_id, actor=reviewer, clock=clock)
    clock.set(dt.datetime.combine(published.ends_on + dt.timedelta(days=1), dt.time(8)))

    def object_() -> Any:
        with transaction(pg) as conn:
            return record_objection(conn, list_id, case_id=cases[0], objector="王某",
                                    contact="13900000000", content="收入不实", received_on=None,
                                    actor=reviewer, clock=clock)  # fmt: skip

    def sweep() -> Any:
        return end_due_publicity(pg, clock)

    barrier = threading.Barrier(2)
    out: dict[str, Any] = {}

    def run(name: str, attempt: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            out[name] = attempt()
        except DomainError as refused:
            out[name] = refused

    threads = [
        threading.Thread(target=run, args=a) for a in (("object", object_), ("sweep", sweep))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    with pg.connect() as conn:
        state = conn.execute(select(list_t.c.state).where(list_t.c.id == list_id)).scalar_one()
    if isinstance(out["object"], DomainError):  # the end came first
        assert state == ListState.ENDED and out["sweep"].lists.ended
        assert events_of(pg, cases, "end_publicity") == len(cases)
    else:  # the objection came first: the list is held, no case moved
        assert state == ListState.PUBLISHED
        assert events_of(pg, cases, "end_publicity") == 0
    consistent(pg, campaign)
