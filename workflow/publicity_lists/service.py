"""What people and the sweep do with publicity lists, each inside the caller's transaction:
build a draft, publish it (its cases into publicity, set-based), withdraw it (its cases back to
waiting), record and resolve objections, end it (its cases on to approval, set-based).

Lock order, the same everywhere: the list's row (PostgreSQL `FOR UPDATE`; SQLite's writer holds
the database), then its cases' rows (the engine's), then funds and counters. Every list event
is version-checked, so of two publishes, two sweeps or an objection racing the end, one wins and
the other is refused (409) or skipped (the sweep) with nothing written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, func, select, update

from jinqiu.states import CaseEvent
from jinqiu.states.publicity_list import ListEvent, ListState
from jinqiu.workflow.audit.chain import append_entries, chain_entry
from jinqiu.workflow.campaigns.rules import RULES
from jinqiu.workflow.cases.engine import CASES, apply_event
from jinqiu.workflow.cases.service import CREATE_EVENT
from jinqiu.workflow.clock import Clock
from jinqiu.workflow.engine import Fired, fire
from jinqiu.workflow.engine.bulk import Item, fire_many
from jinqiu.workflow.errors import Conflict, NotFound, ValidationFailed
from jinqiu.workflow.publicity_lists.engine import (
    IN_PUBLICITY,
    LISTS,
    OPEN,
    WAITING,
    campaign_t,
    case_t,
    list_audit_t,
    list_t,
    member_t,
    objection_t,
    unit_t,
)
from jinqiu.workflow.roles import Actor
from jinqiu.workflow.units.models import in_subtree
from jinqiu.workflow.users.models import Role

MAX_CASES = 10_000  # per list: a district's year fits many times over
MAX_WORKING_DAYS = 30
MAX_LEAD_DAYS = 90  # how far ahead a list may be set to start


class ObjectionResolved(Conflict):
    code = "objection_resolved"


class ObjectionAlreadyOpen(Conflict):
    code = "objection_already_open"


def on_behalf(actor: Actor) -> Actor:
    """The actor a list fires its cases' system events as (`publish`, `unlist`): the person who
    published or withdrew it, named in each case's trail, holding the system's permission for
    those events only — nobody fires them on a single case."""
    return Actor(
        actor.username, actor.unit_code, actor.unit_path, actor.unit_level, (Role.SCHEDULER,)
    )


def _invalid(field: str, code: str, message: str, **more: Any) -> ValidationFailed:
    return ValidationFailed(message, [{"field": field, "code": code, "message": message, **more}])


def build_list(
    conn: Connection,
    *,
    campaign_id: int,
    unit: Any,
    actor: Actor,
    clock: Clock,
    case_ids: Sequence[int] | None = None,
    starts_on: dt.date | None = None,
    working_days: int | None = None,
) -> int:
    """A draft list of `unit` (a row in the actor's subtree): the cases named, or every case of
    the unit's subtree waiting for publicity and on no other list. Refuses (422, naming each
    case) a case that is not waiting, not in the campaign, outside the subtree or on another
    list."""
    now = clock.now()
    today = now.date()
    campaign = conn.execute(
        select(campaign_t.c.id, campaign_t.c.rules_token).where(campaign_t.c.id == campaign_id)
    ).one()
    rules = RULES.get(conn, campaign.id, campaign.rules_token)
    days = rules.publicity_working_days if working_days is None else working_days
    if not 1 <= days <= MAX_WORKING_DAYS:
        raise _invalid(
            "working_days", "out_of_range", f"公示天数须为 1–{MAX_WORKING_DAYS} 个工作日"
        )
    if starts_on is not None and not today <= starts_on <= today + dt.timedelta(MAX_LEAD_DAYS):
        raise _invalid("starts_on", "out_of_range", f"公示开始日期须在今天至 {MAX_LEAD_DAYS} 天内")
    live = select(member_t.c.case_id).where(member_t.c.active)
    candidates = (
        select(
            case_t.c.id, case_t.c.state, case_t.c.campaign_id, case_t.c.id.in_(live).label("listed")
        )
        .join(unit_t, unit_t.c.id == case_t.c.unit_id)
        .where(in_subtree(unit_t.c.path, unit.path))
    )
    if case_ids is None:
        rows = conn.execute(
            candidates.where(
                case_t.c.campaign_id == campaign_id,
                case_t.c.state == WAITING.value,
                case_t.c.id.not_in(live),
            ).order_by(case_t.c.id)
        ).all()
        chosen = [r.id for r in rows]
        if not chosen:
            raise _invalid("case_ids", "nothing_ready", "该单位没有待公示的案件")
    else:
        chosen = list(dict.fromkeys(case_ids))
        found = {r.id: r for r in conn.execute(candidates.where(case_t.c.id.in_(chosen)))}
        problems = []
        for case_id in chosen:
            row = found.get(case_id)
            if row is None or row.campaign_id != campaign_id:
                problems.append((case_id, "not_found", "案件不存在或不在该单位范围内"))
            elif row.state != WAITING.value:
                problems.append((case_id, "not_ready", "案件不在待公示环节"))
            elif row.listed:
                problems.append((case_id, "already_listed", "案件已在另一份公示名单上"))
        if problems:
            raise ValidationFailed(
                f"有 {len(problems)} 件案件不能列入名单",
                [
                    {"field": "case_ids", "code": code, "message": f"案件 {case_id}：{message}",
                     "case_id": case_id}
                    for case_id, code, message in problems
                ],
            )  # fmt: skip
    list_id = int(
        conn.execute(
            list_t.insert()
            .values(
                campaign_id=campaign_id,
                unit_id=unit.id,
                state=ListState.DRAFT.value,
                version=1,
                audit_seq=1,
                audit_head="",
                requested_starts_on=starts_on,
                working_days=days,
                created_by=actor.username,
                created_at=now,
                updated_at=now,
            )
            .returning(list_t.c.id)
        ).scalar_one()
    )
    conn.execute(
        member_t.insert(), [{"list_id": list_id, "case_id": c, "active": True} for c in chosen]
    )
    link = chain_entry(
        subject_column="list_id",
        subject_id=list_id,
        head_seq=0,
        head_hash=None,
        actor=actor.username,
        actor_unit=actor.unit_code,
        event=CREATE_EVENT,
        from_state=None,
        to_state=ListState.DRAFT.value,
        opinion=None,
        data={"cases": chosen},
        at=now,
    )
    append_entries(conn, list_audit_t, [link])
    conn.execute(list_t.update().where(list_t.c.id == list_id).values(audit_head=link.hash))
    return list_id


def _lock_list(conn: Connection, list_id: int, actor: Actor) -> Any:
    """The list's row, held to the end of the transaction (PostgreSQL; SQLite's writer already
    holds the database); NotFound outside the actor's subtree."""
    query = (
        select(list_t, unit_t.c.path.label("unit_path"))
        .join(unit_t, unit_t.c.id == list_t.c.unit_id)
        .where(list_t.c.id == list_id)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(of=list_t)
    row = conn.execute(query).first()
    if row is None or not actor.sees(row.unit_path):
        raise NotFound(f"公示名单 {list_id} 不存在")
    return row


def _member_cases(conn: Connection, list_id: int, state: str | None = None) -> list[Item]:
    query = (
        select(case_t.c.id, case_t.c.version)
        .join(member_t, member_t.c.case_id == case_t.c.id)
        .where(member_t.c.list_id == list_id, member_t.c.active)
        .order_by(case_t.c.id)
    )
    if state is not None:
        query = query.where(case_t.c.state == state)
    return [Item(r.id, r.version) for r in conn.execute(query)]


def _fire_all(
    conn: Connection,
    items: list[Item],
    event: CaseEvent,
    actor: Actor,
    clock: Clock,
    data: dict[str, Any],
) -> list[Fired]:
    """One event on all the list's cases, set-based; any refusal takes the whole call back
    (raised: the caller's transaction rolls back)."""
    results = fire_many(conn, CASES, items=items, event=event, actor=actor, clock=clock, data=data)
    for result in results:
        if result.error is not None:
            raise result.error
    return [r.fired for r in results if r.fired is not None]


def publish_list(conn: Connection, list_id: int, *, actor: Actor, clock: Clock) -> Any:
    """Fixes the list's period and moves all its cases into publicity, in this transaction.
    Cases that left the waiting step since the draft was built (returned, rejected, withdrawn)
    are taken off the list first. Returns the list's row as published."""
    row = _lock_list(conn, list_id, actor)
    if row.state == ListState.DRAFT.value:
        gone = (
            conn.execute(
                select(member_t.c.id)
                .join(case_t, case_t.c.id == member_t.c.case_id)
                .where(
                    member_t.c.list_id == list_id,
                    member_t.c.active,
                    case_t.c.state != WAITING.value,
                )
            )
            .scalars()
            .all()
        )
        if gone:
            conn.execute(update(member_t).where(member_t.c.id.in_(gone)).values(active=False))
    fire(conn, LISTS, subject_id=list_id, event=ListEvent.PUBLISH, expected_version=row.version,
         actor=actor, clock=clock)  # fmt: skip
    published = conn.execute(select(list_t).where(list_t.c.id == list_id)).one()
    _fire_all(
        conn,
        _member_cases(conn, list_id),
        CaseEvent.PUBLISH,
        on_behalf(actor),
        clock,
        {
            "publicity_list": list_id,
            "starts_on": published.starts_on.isoformat(),
            "ends_on": published.ends_on.isoformat(),
        },
    )
    return published


def withdraw_list(
    conn: Connection, list_id: int, *, reason: str, actor: Actor, clock: Clock
) -> None:
    """A draft or published list withdrawn (refused while an objection is open): a published
    list's cases wait for another list."""
    row = _lock_list(conn, list_id, actor)
    fire(conn, LISTS, subject_id=list_id, event=ListEvent.WITHDRAW, expected_version=row.version,
         actor=actor, clock=clock, opinion=reason)  # fmt: skip
    if row.state == ListState.PUBLISHED.value:
        _fire_all(conn, _member_cases(conn, list_id, IN_PUBLICITY.value), CaseEvent.UNLIST,
                  on_behalf(actor), clock, {"publicity_list": list_id})  # fmt: skip
    conn.execute(update(member_t).where(member_t.c.list_id == list_id).values(active=False))


def end_list(conn: Connection, list_id: int, *, actor: Actor, clock: Clock) -> list[Fired]:
    """The day after its period: the list ends and its cases still in publicity go on to
    approval, set-based. Refused (GuardFailed) while an objection is open, or before the day;
    a second sweep is refused by the version (or the state) and writes nothing."""
    version = conn.execute(select(list_t.c.version).where(list_t.c.id == list_id)).scalar_one()
    fire(conn, LISTS, subject_id=list_id, event=ListEvent.END_PUBLICITY,
         expected_version=version, actor=actor, clock=clock)  # fmt: skip
    fired = _fire_all(
        conn, _member_cases(conn, list_id, IN_PUBLICITY.value), CaseEvent.END_PUBLICITY,
        actor, clock, {},
    )  # fmt: skip
    conn.execute(update(member_t).where(member_t.c.list_id == list_id).values(active=False))
    return fired


def record_objection(
    conn: Connection,
    list_id: int,
    *,
    case_id: int,
    objector: str,
    contact: str,
    content: str,
    received_on: dt.date | None,
    actor: Actor,
    clock: Clock,
) -> int:
    """异议 against one case of a published list: the record, an entry on the list's trail and
    the case's `object` (its trail, and its flag that holds the list)."""
    now = clock.now()
    row = _lock_list(conn, list_id, actor)
    received = received_on or now.date()
    if received > now.date():
        raise _invalid("received_on", "in_future", "收到日期不能晚于今天")
    on_list = conn.execute(
        select(case_t.c.version)
        .join(member_t, member_t.c.case_id == case_t.c.id)
        .where(member_t.c.list_id == list_id, member_t.c.active, case_t.c.id == case_id)
    ).first()
    if on_list is None:
        raise _invalid("case_id", "case_not_on_list", f"案件 {case_id} 不在该公示名单上")
    already = conn.execute(
        select(objection_t.c.id).where(
            objection_t.c.case_id == case_id, objection_t.c.status == OPEN
        )
    ).first()
    if already is not None:
        raise ObjectionAlreadyOpen(
            f"案件 {case_id} 已有未处理的异议（{already.id}），请先处理", {"objection": already.id}
        )
    objection_id = int(
        conn.execute(
            objection_t.insert()
            .values(list_id=list_id, case_id=case_id, objector=objector, contact=contact,
                    content=content, received_on=received, status=OPEN,
                    recorded_by=actor.username, recorded_at=now)
            .returning(objection_t.c.id)
        ).scalar_one()
    )  # fmt: skip
    fire(conn, LISTS, subject_id=list_id, event=ListEvent.OBJECT, expected_version=row.version,
         actor=actor, clock=clock, opinion=content,
         data={"objection": objection_id, "case": case_id})  # fmt: skip
    apply_event(conn, case_id=case_id, event=CaseEvent.OBJECT, expected_version=on_list.version,
                actor=actor, clock=clock, opinion=content, data={"objection": objection_id})  # fmt: skip
    return objection_id


UPHELD, DISMISSED = "upheld", "dismissed"


def objection_in_scope(conn: Connection, objection_id: int, actor: Actor) -> Any:
    found = conn.execute(
        select(objection_t, unit_t.c.path.label("unit_path"))
        .join(list_t, list_t.c.id == objection_t.c.list_id)
        .join(unit_t, unit_t.c.id == list_t.c.unit_id)
        .where(objection_t.c.id == objection_id)
    ).first()
    if found is None or not actor.sees(found.unit_path):
        raise NotFound(f"异议 {objection_id} 不存在")
    return found


def resolve_objection(
    conn: Connection, objection_id: int, *, outcome: str, reason: str, actor: Actor, clock: Clock
) -> str:
    """Upheld: the case is rejected, the reason quoted, and leaves the list; dismissed: it goes
    on. The record, the list's trail and the case's trail all say so — the record alone when
    the case has left publicity meanwhile (withdrawn, returned) and the list has ended without
    it. Returns the case's state."""
    now = clock.now()
    found = objection_in_scope(conn, objection_id, actor)
    row = _lock_list(conn, found.list_id, actor)
    done = conn.execute(
        update(objection_t)
        .where(objection_t.c.id == objection_id, objection_t.c.status == OPEN)
        .values(status=outcome, reason=reason, resolved_by=actor.username, resolved_at=now)
    )
    if done.rowcount != 1:
        raise ObjectionResolved(f"异议 {objection_id} 已处理", {"objection": objection_id})
    notes = {"objection": objection_id, "outcome": outcome}
    if (
        row.state == ListState.PUBLISHED.value
    ):  # an ended list's trail is closed: the record says it
        fire(conn, LISTS, subject_id=found.list_id, event=ListEvent.RESOLVE_OBJECTION,
             expected_version=row.version, actor=actor, clock=clock, opinion=reason,
             data={**notes, "case": found.case_id})  # fmt: skip
    case = conn.execute(
        select(case_t.c.version, case_t.c.state).where(case_t.c.id == found.case_id)
    ).one()
    if case.state != IN_PUBLICITY.value:  # withdrawn or returned meanwhile: nothing to decide
        return str(case.state)
    fired = apply_event(conn, case_id=found.case_id, event=CaseEvent.RESOLVE_OBJECTION,
                        expected_version=case.version, actor=actor, clock=clock, opinion=reason,
                        data=notes)  # fmt: skip
    if outcome == UPHELD:
        fired = apply_event(conn, case_id=found.case_id, event=CaseEvent.REJECT,
                            expected_version=fired.version, actor=actor, clock=clock,
                            opinion=f"公示异议成立：{reason}")  # fmt: skip
        conn.execute(
            update(member_t)
            .where(and_(member_t.c.list_id == found.list_id, member_t.c.case_id == found.case_id))
            .values(active=False)
        )
    return str(fired.state)


def open_objections(conn: Connection, list_id: int) -> int:
    return int(
        conn.execute(
            select(func.count())
            .select_from(objection_t)
            .where(objection_t.c.list_id == list_id, objection_t.c.status == OPEN)
        ).scalar_one()
    )
