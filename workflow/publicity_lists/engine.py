"""The publicity list noun: how the engine loads a list's facts, who sees it, its guards and
effects (pure). The machine is `states.publicity_list`; the rest of a transition (version check,
every guard's reasons, the hash-chained audit entry) is the engine's."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, or_, select

from jinqiu.states import CaseState
from jinqiu.states.publicity_list import MACHINE
from jinqiu.workflow.calendar import CalendarUnknown, WorkingCalendar
from jinqiu.workflow.campaigns.models import Campaign
from jinqiu.workflow.campaigns.rules import RULES
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.engine import Loaded, Noun, Outcome
from jinqiu.workflow.errors import Reason
from jinqiu.workflow.publicity_lists.models import (
    Objection,
    PublicityList,
    PublicityListAudit,
    PublicityListMember,
)
from jinqiu.workflow.roles import Actor
from jinqiu.workflow.units.models import Unit

list_t = PublicityList.__table__  # type: ignore[attr-defined]
member_t = PublicityListMember.__table__  # type: ignore[attr-defined]
list_audit_t = PublicityListAudit.__table__  # type: ignore[attr-defined]
objection_t = Objection.__table__  # type: ignore[attr-defined]
case_t = Case.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
campaign_t = Campaign.__table__  # type: ignore[attr-defined]

OPEN = "open"  # an objection's status until it is resolved

_members = (
    select(func.count())
    .select_from(member_t)
    .where(member_t.c.list_id == list_t.c.id, member_t.c.active)
    .scalar_subquery()
)
# What holds a list: a case of the list still in publicity with an objection record open, or
# with its own flag up (an objection fired on the case alone, as before lists existed).
_held = (
    select(func.count())
    .select_from(
        member_t.join(case_t, case_t.c.id == member_t.c.case_id).outerjoin(
            objection_t,
            and_(objection_t.c.case_id == case_t.c.id, objection_t.c.status == OPEN),
        )
    )
    .where(
        member_t.c.list_id == list_t.c.id,
        member_t.c.active,
        case_t.c.state == CaseState.PUBLICITY.value,  # a case that left holds nothing back
        or_(objection_t.c.id.is_not(None), case_t.c.objection_open),
    )
    .scalar_subquery()
)
_load = (
    select(
        list_t,
        unit_t.c.path.label("unit_path"),
        campaign_t.c.rules_token,
        _members.label("members"),
        _held.label("held"),
    )
    .select_from(
        list_t.join(unit_t, unit_t.c.id == list_t.c.unit_id).join(
            campaign_t, campaign_t.c.id == list_t.c.campaign_id
        )
    )
    .where(list_t.c.id == bindparam("list_id"))
)


@dataclass(frozen=True, slots=True)
class ListFacts:
    id: int
    campaign_id: int
    unit_path: str
    today: dt.date
    requested_starts_on: dt.date | None
    working_days: int
    starts_on: dt.date | None
    ends_on: dt.date | None
    members: int  # cases on the list
    held: int  # cases of the list with an open objection
    calendar: WorkingCalendar
    data: Mapping[str, Any]


def period(
    calendar: WorkingCalendar, today: dt.date, requested: dt.date | None, working_days: int
) -> tuple[dt.date, dt.date] | Reason:
    """The period a list published today runs: from the start asked for (today if none, or if
    that day has passed) for `working_days` working days, holidays and 调休 counted as the
    official calendar and the campaign's overrides say (the start day not counted, as for a
    case's own period). The last day is inclusive: the list ends the day after."""
    starts = today if requested is None or requested < today else requested
    try:
        return starts, calendar.add_working_days(starts, working_days)
    except CalendarUnknown as unknown:
        return Reason("calendar_unknown", str(unknown))


def has_cases(facts: ListFacts) -> list[Reason]:
    return [] if facts.members else [Reason("list_empty", "名单中没有案件")]


def period_in_calendar(facts: ListFacts) -> list[Reason]:
    found = period(facts.calendar, facts.today, facts.requested_starts_on, facts.working_days)
    return [found] if isinstance(found, Reason) else []


def no_open_objection(facts: ListFacts) -> list[Reason]:
    if facts.held:
        return [Reason("objection_open", f"名单上有 {facts.held} 件未处理的异议")]
    return []


def period_over(facts: ListFacts) -> list[Reason]:
    if facts.ends_on is None:
        return [Reason("publicity_not_started", "名单尚未发布")]
    if facts.today <= facts.ends_on:
        return [Reason("publicity_running", f"公示期至{facts.ends_on.isoformat()}（含）结束")]
    return []


def fix_period(facts: ListFacts, opinion: str | None) -> Outcome:
    found = period(facts.calendar, facts.today, facts.requested_starts_on, facts.working_days)
    assert not isinstance(found, Reason), "period_in_calendar runs before fix_period"
    starts, ends = found
    audit: dict[str, Any] = {
        "starts_on": starts.isoformat(),
        "ends_on": ends.isoformat(),
        "working_days": facts.working_days,
        "cases": facts.members,
    }
    return Outcome(changes={"starts_on": starts, "ends_on": ends}, audit=audit)


def note_objection(facts: ListFacts, opinion: str | None) -> Outcome:
    return Outcome(
        audit={k: facts.data[k] for k in ("objection", "case", "outcome") if k in facts.data}
    )


class ListNoun(Noun[ListFacts]):
    machine = MACHINE
    table = list_t
    audit_table = list_audit_t
    audit_subject = "list_id"
    label = "公示名单"
    guards = MappingProxyType(
        {
            "has_cases": has_cases,
            "period_in_calendar": period_in_calendar,
            "no_open_objection": no_open_objection,
            "period_over": period_over,
        }
    )
    effects = MappingProxyType({"fix_period": fix_period, "note_objection": note_objection})

    def load(
        self, conn: Connection, subject_id: int, *, today: dt.date, data: Mapping[str, Any]
    ) -> Loaded[ListFacts] | None:
        row = conn.execute(_load, {"list_id": subject_id}).first()
        if row is None:
            return None
        rules = RULES.get(conn, row.campaign_id, row.rules_token)
        facts = ListFacts(
            id=row.id,
            campaign_id=row.campaign_id,
            unit_path=row.unit_path,
            today=today,
            requested_starts_on=row.requested_starts_on,
            working_days=row.working_days,
            starts_on=row.starts_on,
            ends_on=row.ends_on,
            members=row.members,
            held=row.held,
            calendar=rules.calendar,
            data=data,
        )
        return Loaded(row.id, row.state, row.version, row.audit_seq, row.audit_head, facts)

    def visible(self, actor: Actor, loaded: Loaded[ListFacts]) -> bool:
        return actor.sees(loaded.facts.unit_path)


LISTS = ListNoun()
LISTS.check_declaration()

# The cases a list moves: only those still where the list left them.
WAITING = CaseState.READY_FOR_PUBLICITY
IN_PUBLICITY = CaseState.PUBLICITY
