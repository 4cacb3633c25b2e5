"""Employment records and work-study posts as their faces show them (JSON and pages): scoped
lists, a record with its help and its trail, a post with its participants. The student's name
is masked (张*明) for a caller without pii.read; no identity number is ever shown here."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from jinqiu.states.employment_record import MACHINE, RecordEvent
from jinqiu.workflow.cases.models import Student
from jinqiu.workflow.employment.engine import (
    RECORDS,
    case_t,
    help_t,
    participant_t,
    post_t,
    record_audit_t,
    record_t,
    unit_t,
)
from jinqiu.workflow.employment.service import HELP_KINDS, POST_KINDS
from jinqiu.workflow.masking import mask_given_name
from jinqiu.workflow.money import format_yuan
from jinqiu.workflow.roles import Actor, Grant
from jinqiu.workflow.units.models import in_subtree

student_t = Student.__table__  # type: ignore[attr-defined]
MAX_LIST = 500  # rows per page of a list


def _name(actor: Actor, name: str) -> str:
    return name if actor.may(Grant.READ_PII) else mask_given_name(name)


def _record_row(actor: Actor, r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "case_id": r.case_id,
        "unit": r.unit_code,
        "student": _name(actor, r.student_name),
        "state": r.state,
        "state_label": MACHINE.state_labels[r.state],
        "version": r.version,
        "graduation_year": r.graduation_year,
        "school": r.school,
        "major": r.major,
        "studies_locally": r.studies_locally,
        "destination": r.destination,
        "help_count": r.help_count,
    }


_helped = (
    select(func.count())
    .select_from(help_t)
    .where(help_t.c.record_id == record_t.c.id)
    .scalar_subquery()
)
_records = (
    select(
        record_t,
        unit_t.c.code.label("unit_code"),
        student_t.c.name.label("student_name"),
        _helped.label("help_count"),
    )
    .join(unit_t, unit_t.c.id == record_t.c.unit_id)
    .join(case_t, case_t.c.id == record_t.c.case_id)
    .join(student_t, student_t.c.id == case_t.c.student_id)
)


def list_records(
    conn: Connection,
    *,
    campaign_id: int,
    unit: Any,
    actor: Actor,
    state: str | None = None,
    offset: int = 0,
    limit: int = MAX_LIST,
) -> dict[str, Any]:
    """The records of `unit`'s subtree in the campaign, by id; `state` filters."""
    where = [record_t.c.campaign_id == campaign_id, in_subtree(unit_t.c.path, unit.path)]
    if state is not None:
        where.append(record_t.c.state == state)
    total = conn.execute(
        select(func.count())
        .select_from(record_t.join(unit_t, unit_t.c.id == record_t.c.unit_id))
        .where(*where)
    ).scalar_one()
    rows = conn.execute(
        _records.where(*where).order_by(record_t.c.id).offset(offset).limit(limit)
    ).all()
    return {"total": total, "items": [_record_row(actor, r) for r in rows]}


def record_view(conn: Connection, record_id: int, *, actor: Actor) -> dict[str, Any]:
    """One record (already scoped), with its help, its trail and the events the actor may fire."""
    row = conn.execute(_records.where(record_t.c.id == record_id)).one()
    view = _record_row(actor, row)
    view["campaign_id"] = row.campaign_id
    loaded = RECORDS.load(conn, record_id, today=row.created_at.date(), data={})
    assert loaded is not None
    view["allowed_events"] = [
        {"event": e, "label": MACHINE.event_labels[RecordEvent(e)]}
        for e in RECORDS.allowed_events(actor, loaded)
    ]
    view["help"] = [
        {
            "id": h.id,
            "kind": h.kind,
            "label": HELP_KINDS[h.kind].label,
            "given_on": h.given_on,
            "text": h.text,
            "amount": None if h.amount_fen is None else format_yuan(h.amount_fen),
            "recorded_by": h.recorded_by,
        }
        for h in conn.execute(
            select(help_t).where(help_t.c.record_id == record_id).order_by(help_t.c.id)
        )
    ]
    view["history"] = [
        {
            "seq": e.seq,
            "event": e.event,
            "from": e.from_state,
            "to": e.to_state,
            "actor": e.actor,
            "opinion": e.opinion,
            "data": e.data,
            "at": e.at,
        }
        for e in conn.execute(
            select(record_audit_t)
            .where(record_audit_t.c.record_id == record_id)
            .order_by(record_audit_t.c.seq)
        )
    ]
    return view


_participants = (
    select(func.count())
    .select_from(participant_t)
    .where(participant_t.c.post_id == post_t.c.id, participant_t.c.active)
    .scalar_subquery()
)


def _post_row(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "campaign_id": r.campaign_id,
        "unit": r.unit_code,
        "title": r.title,
        "employer": r.employer,
        "kind": r.kind,
        "kind_label": POST_KINDS[r.kind],
        "hours_per_week": r.hours_per_week,
        "hourly_pay": format_yuan(r.hourly_pay_fen),
        "open": r.is_open,
        "participants": r.participants,
    }


_posts = select(post_t, unit_t.c.code.label("unit_code"), _participants.label("participants")).join(
    unit_t, unit_t.c.id == post_t.c.unit_id
)


def list_posts(
    conn: Connection, *, campaign_id: int, unit: Any, offset: int = 0, limit: int = MAX_LIST
) -> dict[str, Any]:
    where = [post_t.c.campaign_id == campaign_id, in_subtree(unit_t.c.path, unit.path)]
    total = conn.execute(
        select(func.count())
        .select_from(post_t.join(unit_t, unit_t.c.id == post_t.c.unit_id))
        .where(*where)
    ).scalar_one()
    rows = conn.execute(_posts.where(*where).order_by(post_t.c.id).offset(offset).limit(limit))
    return {"total": total, "items": [_post_row(r) for r in rows]}


def post_view(conn: Connection, post_id: int, *, actor: Actor) -> dict[str, Any]:
    """One post (already scoped) with its active participants."""
    view = _post_row(conn.execute(_posts.where(post_t.c.id == post_id)).one())
    view["members"] = [
        {
            "case_id": p.case_id,
            "student": _name(actor, p.student_name),
            "unit": p.unit_code,
            "added_by": p.added_by,
            "added_at": p.added_at,
        }
        for p in conn.execute(
            select(
                participant_t.c.case_id,
                participant_t.c.added_by,
                participant_t.c.added_at,
                student_t.c.name.label("student_name"),
                unit_t.c.code.label("unit_code"),
            )
            .join(case_t, case_t.c.id == participant_t.c.case_id)
            .join(student_t, student_t.c.id == case_t.c.student_id)
            .join(unit_t, unit_t.c.id == case_t.c.unit_id)
            .where(participant_t.c.post_id == post_id, participant_t.c.active)
            .order_by(participant_t.c.id)
        )
    ]
    return view
