"""Ending publicity periods. First the publicity lists whose period is over (each list and all
its cases in one transaction: workflow/publicity_lists/sweep.py); then the cases with a period
of their own and on no list — those that entered publicity before lists existed (migration
0012) — case by case, as before: every such case whose period is over and has no open objection
moves on to approval, fired by the scheduler (and audited as such). Each case is its own transaction,
so one refusal or lost race never holds up the others, and two sweeps never double-fire; a case
whose campaign cannot be read is reported against its campaign and the others go on."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, select

from jinqiu.notifications.models import Channel
from jinqiu.notifications.outbox import InboxItem, Outgoing, enqueue, post_to_inbox
from jinqiu.notifications.render import render
from jinqiu.states import CaseEvent, CaseState
from jinqiu.workflow.campaigns.models import Campaign
from jinqiu.workflow.cases.engine import apply_event
from jinqiu.workflow.cases.models import Case, Student
from jinqiu.workflow.clock import Clock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.errors import DomainError
from jinqiu.workflow.failures import CampaignFailure, failed
from jinqiu.workflow.publicity_lists.models import PublicityListMember
from jinqiu.workflow.publicity_lists.sweep import ListsOutcome, end_due_lists
from jinqiu.workflow.roles import SCHEDULER
from jinqiu.workflow.units.models import Unit

case_t = Case.__table__  # type: ignore[attr-defined]
student_t = Student.__table__  # type: ignore[attr-defined]
campaign_t = Campaign.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
member_t = PublicityListMember.__table__  # type: ignore[attr-defined]


@dataclass
class PublicityOutcome:
    ended: list[int] = field(default_factory=list)
    held_by_objection: list[int] = field(default_factory=list)
    skipped: int = 0  # another sweep got there first
    failures: list[CampaignFailure] = field(default_factory=list)  # per case, named by campaign
    lists: ListsOutcome = field(default_factory=ListsOutcome)


def end_due_publicity(
    engine: Engine, clock: Clock, *, base_url: str = "", campaigns: Collection[int] | None = None
) -> PublicityOutcome:
    now = clock.now()
    today = now.date()
    outcome = PublicityOutcome()
    outcome.lists = end_due_lists(engine, clock, base_url=base_url, campaigns=campaigns)
    for cases in outcome.lists.ended.values():
        outcome.ended.extend(cases)
    outcome.skipped += outcome.lists.skipped
    outcome.failures.extend(outcome.lists.failures)
    on_a_list = select(member_t.c.case_id).where(member_t.c.active)
    query = (
        select(
            case_t.c.id,
            case_t.c.version,
            case_t.c.objection_open,
            case_t.c.publicity_ends_on,
            case_t.c.campaign_id,
            campaign_t.c.name.label("campaign_name"),
            unit_t.c.code.label("unit_code"),
            unit_t.c.name.label("unit_name"),
            unit_t.c.contact_email,
            student_t.c.name.label("student_name"),
        )
        .join(unit_t, unit_t.c.id == case_t.c.unit_id)
        .join(student_t, student_t.c.id == case_t.c.student_id)
        .join(campaign_t, campaign_t.c.id == case_t.c.campaign_id)
        .where(
            case_t.c.state == CaseState.PUBLICITY.value,
            case_t.c.publicity_ends_on < today,  # the last day counts in full
            case_t.c.id.not_in(on_a_list),  # a list ends its cases itself
        )
    )
    if campaigns is not None:  # a sweep within a subtree: its campaigns only
        query = query.where(case_t.c.campaign_id.in_(list(campaigns)))
    with engine.connect() as conn:
        due = conn.execute(query.order_by(case_t.c.id)).all()
    for row in due:
        try:
            if row.objection_open:
                with transaction(engine) as conn:
                    _tell_unit_objection_holds(conn, row, base_url, now)
                outcome.held_by_objection.append(row.id)
                continue
            with transaction(engine) as conn:
                apply_event(
                    conn,
                    case_id=row.id,
                    event=CaseEvent.END_PUBLICITY,
                    expected_version=row.version,
                    actor=SCHEDULER,
                    clock=clock,
                )
            outcome.ended.append(row.id)
        except DomainError:
            outcome.skipped += 1
        except Exception as exc:  # the campaign's trouble, not the other campaigns'
            outcome.failures.append(
                failed(row.campaign_id, row.campaign_name, f"公示结束（案件 {row.id}）", exc)
            )
    return outcome


def _tell_unit_objection_holds(conn: Connection, row: Any, base_url: str, now: dt.datetime) -> None:
    """Once per case and publicity period (the idempotency key says so), however often we sweep."""
    link = f"{base_url.rstrip('/')}/cases/{row.id}"
    text = render(
        "publicity_held.txt",
        unit_name=row.unit_name,
        case_id=row.id,
        student_name=row.student_name,
        ends_on=row.publicity_ends_on.isoformat(),
        link=link,
    )
    subject = f"【公示异议待处理】案件 {row.id}（{row.student_name}）"
    key = f"publicity-held:{row.id}:{row.publicity_ends_on.isoformat()}"
    if row.contact_email:
        enqueue(
            conn,
            [
                Outgoing(
                    f"{key}:email",
                    Channel.EMAIL.value,
                    row.contact_email,
                    subject,
                    text,
                    unit_code=row.unit_code,
                )
            ],
            now,
        )
    post_to_inbox(conn, [InboxItem(f"{key}:inbox", row.unit_code, subject, text, link)], now)
