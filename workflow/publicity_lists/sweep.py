"""Ending publicity lists, fired by the scheduler: every published list whose last day has
passed ends, and its cases go on to approval, set-based — one transaction per list, so one held
or failing list never holds up the others. Any number of sweeps may run at once: the list's
version lets one of them end it; the others are refused and write nothing. A list held by an
open objection tells its unit once per period."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, select

from jinqiu.notifications.models import Channel
from jinqiu.notifications.outbox import InboxItem, Outgoing, enqueue, post_to_inbox
from jinqiu.notifications.render import render
from jinqiu.states.publicity_list import ListState
from jinqiu.workflow.clock import Clock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.errors import DomainError, GuardFailed
from jinqiu.workflow.failures import CampaignFailure, failed
from jinqiu.workflow.publicity_lists.engine import campaign_t, list_t, unit_t
from jinqiu.workflow.publicity_lists.service import end_list, open_objections
from jinqiu.workflow.roles import SCHEDULER


@dataclass
class ListsOutcome:
    ended: dict[int, list[int]] = field(default_factory=dict)  # list → its cases moved on
    held: list[int] = field(default_factory=list)  # an objection is open
    skipped: int = 0  # another sweep got there first
    failures: list[CampaignFailure] = field(default_factory=list)


def end_due_lists(
    engine: Engine, clock: Clock, *, base_url: str = "", campaigns: Collection[int] | None = None
) -> ListsOutcome:
    today = clock.now().date()
    query = (
        select(
            list_t.c.id,
            list_t.c.ends_on,
            list_t.c.campaign_id,
            campaign_t.c.name.label("campaign_name"),
            unit_t.c.code.label("unit_code"),
            unit_t.c.name.label("unit_name"),
            unit_t.c.contact_email,
        )
        .join(unit_t, unit_t.c.id == list_t.c.unit_id)
        .join(campaign_t, campaign_t.c.id == list_t.c.campaign_id)
        .where(list_t.c.state == ListState.PUBLISHED.value, list_t.c.ends_on < today)
        .order_by(list_t.c.id)
    )
    if campaigns is not None:  # a sweep within a subtree: its campaigns only
        query = query.where(list_t.c.campaign_id.in_(list(campaigns)))
    with engine.connect() as conn:
        due = conn.execute(query).all()
    outcome = ListsOutcome()
    for row in due:
        try:
            with transaction(engine) as conn:
                fired = end_list(conn, row.id, actor=SCHEDULER, clock=clock)
            outcome.ended[row.id] = [f.id for f in fired]
        except GuardFailed as refused:
            if not any(r.code == "objection_open" for r in refused.reasons):
                outcome.skipped += 1
                continue
            with transaction(engine) as conn:
                _tell_unit_list_held(conn, row, base_url, clock.now())
            outcome.held.append(row.id)
        except DomainError:
            outcome.skipped += 1
        except Exception as exc:  # the campaign's trouble, not the other campaigns'
            outcome.failures.append(
                failed(row.campaign_id, row.campaign_name, f"公示名单结束（名单 {row.id}）", exc)
            )
    return outcome


def _tell_unit_list_held(conn: Connection, row: Any, base_url: str, now: dt.datetime) -> None:
    """Once per list and period (the idempotency key says so), however often we sweep."""
    link = f"{base_url.rstrip('/')}/publicity-lists/{row.id}"
    held = open_objections(conn, row.id)
    text = render(
        "publicity_list_held.txt",
        unit_name=row.unit_name,
        list_id=row.id,
        ends_on=row.ends_on.isoformat(),
        held=held,
        link=link,
    )
    subject = f"【公示异议待处理】公示名单 {row.id}"
    key = f"publicity-list-held:{row.id}:{row.ends_on.isoformat()}"
    outgoing = (
        [Outgoing(f"{key}:email", Channel.EMAIL.value, row.contact_email, subject, text,
                  unit_code=row.unit_code)]
        if row.contact_email
        else []
    )  # fmt: skip
    enqueue(conn, outgoing, now)
    post_to_inbox(conn, [InboxItem(f"{key}:inbox", row.unit_code, subject, text, link)], now)
