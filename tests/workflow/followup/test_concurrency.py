"""Real threads against PostgreSQL, released together by a barrier: a case renewed by many at
once gets one renewal, the others 409; visits recorded at once are all counted, and the case
closes once, by the visit that met the rule. Outcomes only, never timings."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, func, select

from jinqiu.states import CaseState
from jinqiu.workflow.audit.models import AuditEntry
from jinqiu.workflow.campaigns.service import load_campaign
from jinqiu.workflow.cases.counters import recount, stored
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.cases.trail import verify_case_chains
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.errors import RenewalExists
from jinqiu.workflow.followup.models import FollowUpVisit
from jinqiu.workflow.followup.renewal import renew_case
from jinqiu.workflow.followup.visits import VisitIn, record_visit
from tests.factories import actor_of, case_in, case_row, weihai, weihai_file_in
from tests.workflow.publicity_lists.test_concurrency import race

THREADS = 8
case_t = Case.__table__  # type: ignore[attr-defined]
audit_t = AuditEntry.__table__  # type: ignore[attr-defined]
visit_t = FollowUpVisit.__table__  # type: ignore[attr-defined]


def consistent(pg: Engine) -> None:
    with pg.connect() as conn:
        assert list(verify_case_chains(conn)) == []
        for campaign in conn.execute(select(case_t.c.campaign_id).distinct()).scalars():
            assert stored(conn, campaign) == recount(conn, campaign)


def test_concurrent_renewals_of_one_case_make_one(pg: Engine, clock: ManualClock) -> None:
    _tree, campaign = weihai(pg, clock)
    case = case_in(pg, clock, campaign, "WH-HC-001", CaseState.FOLLOW_UP)
    with transaction(pg) as conn:
        later = load_campaign(conn, weihai_file_in(2025), clock)
    clerk = actor_of(pg, "WH-HC-001", "clerk")

    def attempt() -> int:
        with transaction(pg) as conn:
            return renew_case(conn, case, campaign_id=later, actor=clerk, clock=clock)

    results = race(THREADS, attempt)
    made = [r for r in results if isinstance(r, int)]
    assert len(made) == 1, results
    assert all(isinstance(r, RenewalExists) for r in results if not isinstance(r, int)), results
    with pg.connect() as conn:
        renewals = conn.execute(select(case_t.c.id).where(case_t.c.renewal_of == case)).all()
    assert [r.id for r in renewals] == made
    consistent(pg)


def test_concurrent_visits_are_all_counted_and_close_the_case_once(
    pg: Engine, clock: ManualClock
) -> None:
    _tree, campaign = weihai(
        pg, clock, follow_up={"visits_required": 3, "local_decision": "测试：三次回访"}
    )
    case = case_in(pg, clock, campaign, "WH-HC-001", CaseState.FOLLOW_UP)
    clock.advance(dt.timedelta(days=3))
    clerk = actor_of(pg, "WH-HC-001", "clerk")
    visit = VisitIn.model_validate(
        {"date": clock.now().date().isoformat(), "kind": "phone", "visitor": "李干事"}
    )

    def attempt() -> str:
        with transaction(pg) as conn:
            return record_visit(conn, case, visit, actor=clerk, clock=clock).case_state

    results = race(THREADS, attempt)
    # The first three are recorded (the third closes the case); the rest find it closed.
    assert sorted(str(r) for r in results).count(CaseState.CLOSED.value) == 1, results
    assert [r for r in results if isinstance(r, str)].count(CaseState.FOLLOW_UP.value) == 2
    row = case_row(pg, case)
    assert (row.state, row.follow_up_visits) == (CaseState.CLOSED.value, 3)
    with pg.connect() as conn:
        assert conn.execute(select(func.count()).select_from(visit_t)).scalar_one() == 3
        events = conn.execute(
            select(audit_t.c.event).where(audit_t.c.case_id == case).order_by(audit_t.c.seq)
        ).scalars()
        assert list(events)[-4:] == ["visit", "visit", "visit", "close"]
    consistent(pg)
