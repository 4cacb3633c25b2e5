"""Follow-up visits (回访) of a paid case, and the close they lead to.

A visit is a record and an entry on the case's audit chain (`visit`, through append_case_entry:
version bumped), in the caller's transaction. When the campaign has a follow-up rule and this
visit makes up its number, the case's `close` is fired through the engine in the same
transaction, by the same person (who holds `case.follow_up`, the permission of both): the guard
`follow_up_visits_done` then passes, and the trail shows the visit and the close.

Cases the visits do not close stay in follow-up, counted on the dashboard and chased by a
follow-up deadline where the campaign sets one, until the campaign ends: then the sweep closes
them (campaign_end.py), their trail saying they were not visited. A case that cannot be visited
(the family moved away) is closed earlier by a manager overriding the guard with a reason, which
the trail keeps."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Connection, insert, select

from jinqiu.states import MACHINE, CaseEvent, CaseState, Permission
from jinqiu.workflow.campaigns.models import Campaign
from jinqiu.workflow.campaigns.rules import RULES
from jinqiu.workflow.cases.engine import apply_event
from jinqiu.workflow.cases.models import Case, Worker
from jinqiu.workflow.cases.service import append_case_entry
from jinqiu.workflow.clock import Clock
from jinqiu.workflow.errors import EventNotAllowed, NotFound, PermissionDenied, ValidationFailed
from jinqiu.workflow.followup.models import (
    NOTES_MAX,
    SITUATION_LABELS,
    VISIT_KIND_LABELS,
    VISITOR_MAX,
    FollowUpVisit,
    Situation,
    VisitKind,
)
from jinqiu.workflow.masking import masked_text
from jinqiu.workflow.roles import Actor, Grant
from jinqiu.workflow.units.models import Unit

visit_t = FollowUpVisit.__table__  # type: ignore[attr-defined]
case_t = Case.__table__  # type: ignore[attr-defined]
worker_t = Worker.__table__  # type: ignore[attr-defined]
campaign_t = Campaign.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]

VISIT_EVENT = "visit"  # in the case's audit chain, beside create, amend and attach
_CONTROL = tuple(chr(c) for c in (*range(0, 9), 11, 12, *range(14, 32), 127))


class VisitIn(BaseModel):
    """A visit as the API and the page take it (docs/CONTRACT.md)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    date: dt.date
    kind: VisitKind
    visitor: str = Field(min_length=1, max_length=VISITOR_MAX)
    situation: Situation = Situation.STUDYING
    notes: str = Field(default="", max_length=NOTES_MAX)
    # 脱困退出: the visitor learnt the family left the hardship archive on this day.
    archive_exited_on: dt.date | None = None

    @field_validator("visitor", "notes")
    @classmethod
    def _no_control_characters(cls, v: str) -> str:
        # NUL cannot be stored by PostgreSQL; notes keep their line breaks and tabs.
        if any(c in v for c in _CONTROL):
            raise ValueError("不能包含控制字符")
        return v


@dataclass(frozen=True, slots=True)
class VisitOut:
    id: int
    case_id: int
    date: dt.date
    kind: str
    kind_label: str
    visitor: str
    situation: str
    situation_label: str
    notes: str
    recorded_by: str
    recorded_at: dt.datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "date": self.date,
            "kind": self.kind,
            "kind_label": self.kind_label,
            "visitor": self.visitor,
            "situation": self.situation,
            "situation_label": self.situation_label,
            "notes": self.notes,
            "recorded_by": self.recorded_by,
            "recorded_at": self.recorded_at,
        }


@dataclass(frozen=True, slots=True)
class Recorded:
    visit: VisitOut
    case_state: str
    case_version: int
    visits: int  # visits recorded on the case so far
    visits_required: int  # the campaign's rule; 0: none


def may_visit(actor: Actor, state: str) -> bool:
    return actor.may(Permission.FOLLOW_UP_CASE) and state == CaseState.FOLLOW_UP.value


def record_visit(
    conn: Connection, case_id: int, visit: VisitIn, *, actor: Actor, clock: Clock
) -> Recorded:
    """Refusals: PermissionDenied, NotFound (outside the subtree), EventNotAllowed (the case is
    not in follow-up), ValidationFailed (a date in the future or before the case was paid)."""
    if not actor.may(Permission.FOLLOW_UP_CASE):
        raise PermissionDenied("当前角色无权登记回访")
    case = _case(conn, case_id, actor, lock=True)
    if case.state != CaseState.FOLLOW_UP.value:
        label = MACHINE.state_labels.get(case.state, case.state)
        raise EventNotAllowed(
            f"案件处于“{label}”，只有发放后回访阶段的案件可以登记回访", {"state": case.state}
        )
    today = clock.now().date()
    problems = []
    if visit.date > today:
        problems.append(_problem("date", "date_in_future", f"回访日期不能晚于今天（{today}）"))
    elif case.paid_on is not None and visit.date < case.paid_on:
        problems.append(
            _problem("date", "date_before_payment", f"回访日期不能早于发放日期（{case.paid_on}）")
        )
    if visit.archive_exited_on is not None and visit.archive_exited_on > today:
        problems.append(
            _problem("archive_exited_on", "date_in_future", f"脱困退出日期不能晚于今天（{today}）")
        )
    if problems:
        raise ValidationFailed(
            "回访记录有误：" + "；".join(p["message"] for p in problems), problems
        )
    now = clock.now()
    new_id = conn.execute(
        insert(visit_t)
        .values(
            case_id=case_id,
            visited_on=visit.date,
            kind=visit.kind.value,
            visitor=visit.visitor,
            situation=visit.situation.value,
            notes=visit.notes,
            recorded_by=actor.username,
            recorded_at=now,
        )
        .returning(visit_t.c.id)
    ).scalar_one()
    visits = case.follow_up_visits + 1
    conn.execute(case_t.update().where(case_t.c.id == case_id).values(follow_up_visits=visits))
    data: dict[str, Any] = {
        "visit": new_id,
        "date": visit.date.isoformat(),
        "kind": visit.kind.value,
        "visitor": visit.visitor,
        "situation": visit.situation.value,
        "visits": visits,
    }
    if visit.archive_exited_on is not None:
        conn.execute(
            worker_t.update()
            .where(worker_t.c.id == case.worker_id)
            .values(archive_exited_on=visit.archive_exited_on)
        )
        data["archive_exited_on"] = visit.archive_exited_on.isoformat()
    version = append_case_entry(
        conn, case, actor=actor, event=VISIT_EVENT, opinion=None, data=data, at=now
    )
    rules = RULES.get(conn, case.campaign_id, case.rules_token)
    state = case.state
    if rules.visits_required and visits >= rules.visits_required:
        fired = apply_event(
            conn,
            case_id=case_id,
            event=CaseEvent.CLOSE,
            expected_version=version,
            actor=actor,
            clock=clock,
            opinion=f"已回访{visits}次，达到本次活动的回访要求",
        )
        state, version = str(fired.state), fired.version
    saved = conn.execute(select(visit_t).where(visit_t.c.id == new_id)).one()
    return Recorded(_out(saved, actor), state, version, visits, rules.visits_required)


def list_visits(conn: Connection, case_id: int, actor: Actor) -> list[VisitOut]:
    """A case's visits, in the order they happened."""
    _case(conn, case_id, actor, lock=False)
    rows = conn.execute(
        select(visit_t)
        .where(visit_t.c.case_id == case_id)
        .order_by(visit_t.c.visited_on, visit_t.c.id)
    )
    return [_out(r, actor) for r in rows]


def _problem(field: str, code: str, message: str) -> dict[str, str]:
    return {"field": field, "code": code, "message": message}


def _case(conn: Connection, case_id: int, actor: Actor, *, lock: bool) -> Any:
    query = (
        select(
            case_t.c.id,
            case_t.c.campaign_id,
            case_t.c.state,
            case_t.c.version,
            case_t.c.audit_seq,
            case_t.c.audit_head,
            case_t.c.paid_on,
            case_t.c.worker_id,
            case_t.c.follow_up_visits,
            campaign_t.c.rules_token,
            unit_t.c.path,
        )
        .join(unit_t, unit_t.c.id == case_t.c.unit_id)
        .join(campaign_t, campaign_t.c.id == case_t.c.campaign_id)
        .where(case_t.c.id == case_id)
    )
    if lock:  # two visits at once: the second waits and counts the first (PostgreSQL)
        query = query.with_for_update(of=case_t)
    row = conn.execute(query).first()
    if row is None or not actor.sees(row.path):
        raise NotFound(f"案件 {case_id} 不存在")
    return row


def _out(row: Any, actor: Actor) -> VisitOut:
    """Notes are free text and may carry an identity number: masked without pii.read."""
    return VisitOut(
        id=row.id,
        case_id=row.case_id,
        date=row.visited_on,
        kind=row.kind,
        kind_label=VISIT_KIND_LABELS[VisitKind(row.kind)],
        visitor=row.visitor,
        situation=row.situation,
        situation_label=SITUATION_LABELS[Situation(row.situation)],
        notes=row.notes if actor.may(Grant.READ_PII) else masked_text(row.notes),
        recorded_by=row.recorded_by,
        recorded_at=row.recorded_at,
    )
