"""Ending publicity periods: every case whose period is over and has no open objection moves
on to approval, fired by the scheduler (and audited as such). Each case is its own transaction,
so one refusal or lost race never holds up the others, and two sweeps never double-fire."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine, select

from states import CaseEvent, CaseState
from workflow.cases.engine import apply_event
from workflow.cases.models import Case
from workflow.clock import Clock
from workflow.db import transaction
from workflow.errors import DomainError
from workflow.roles import SCHEDULER

case_t = Case.__table__  # type: ignore[attr-defined]


@dataclass
class PublicityOutcome:
    ended: list[int] = field(default_factory=list)
    held_by_objection: list[int] = field(default_factory=list)
    skipped: int = 0  # another sweep got there first


def end_due_publicity(engine: Engine, clock: Clock, *, campaign_id: int | None = None) -> PublicityOutcome:
    today = clock.now().date()
    query = select(case_t.c.id, case_t.c.version, case_t.c.objection_open).where(
        case_t.c.state == CaseState.PUBLICITY.value, case_t.c.publicity_ends_on <= today
    )
    if campaign_id is not None:
        query = query.where(case_t.c.campaign_id == campaign_id)
    with engine.connect() as conn:
        due = conn.execute(query.order_by(case_t.c.id)).all()
    outcome = PublicityOutcome()
    for row in due:
        if row.objection_open:
            outcome.held_by_objection.append(row.id)
            continue
        try:
            with transaction(engine) as conn:
                apply_event(conn, case_id=row.id, event=CaseEvent.END_PUBLICITY,
                            expected_version=row.version, actor=SCHEDULER, clock=clock)
            outcome.ended.append(row.id)
        except DomainError:
            outcome.skipped += 1
    return outcome
