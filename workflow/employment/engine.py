"""The employment record noun: how the engine loads a record's facts, who sees it, its guards
and effects (pure). The machine is `states.employment_record`; the version check, the reasons,
the hash-chained entry are the engine's. Served at `POST /api/employment-records/{id}/events`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sqlalchemy import Connection, bindparam, select

from jinqiu.states.employment_record import MACHINE
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.employment.models import (
    EmploymentHelp,
    EmploymentRecord,
    EmploymentRecordAudit,
    WorkStudyParticipant,
    WorkStudyPost,
)
from jinqiu.workflow.engine import Loaded, Noun, Outcome
from jinqiu.workflow.engine.registry import serve
from jinqiu.workflow.errors import Reason
from jinqiu.workflow.roles import Actor
from jinqiu.workflow.units.models import Unit

record_t = EmploymentRecord.__table__  # type: ignore[attr-defined]
help_t = EmploymentHelp.__table__  # type: ignore[attr-defined]
record_audit_t = EmploymentRecordAudit.__table__  # type: ignore[attr-defined]
post_t = WorkStudyPost.__table__  # type: ignore[attr-defined]
participant_t = WorkStudyParticipant.__table__  # type: ignore[attr-defined]
case_t = Case.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]

MAX_DESTINATION = 200  # the column's length

_load = (
    select(record_t, unit_t.c.path.label("unit_path"))
    .join(unit_t, unit_t.c.id == record_t.c.unit_id)
    .where(record_t.c.id == bindparam("record_id"))
)


@dataclass(frozen=True, slots=True)
class RecordFacts:
    id: int
    unit_path: str
    destination: str | None
    data: Mapping[str, Any]


def _named(facts: RecordFacts) -> str:
    """The employer (employ, interview) or school (continue_study) the event's data names."""
    value = facts.data.get("employer", facts.data.get("school"))
    return value.strip() if isinstance(value, str) else ""


def destination_named(facts: RecordFacts) -> list[Reason]:
    named = _named(facts)
    if not named:
        return [Reason("destination_missing", "须填写就业单位或升学学校")]
    if len(named) > MAX_DESTINATION:
        return [Reason("destination_too_long", f"单位或学校名称不超过 {MAX_DESTINATION} 字")]
    return []


def fix_destination(facts: RecordFacts, opinion: str | None) -> Outcome:
    named = _named(facts)
    return Outcome(changes={"destination": named}, audit={"destination": named})


def note_destination(facts: RecordFacts, opinion: str | None) -> Outcome:
    """An interview may name the employer (kept in the trail only, not as the destination)."""
    named = _named(facts)[:MAX_DESTINATION]
    return Outcome(audit={"employer": named} if named else {})


class RecordNoun(Noun[RecordFacts]):
    machine = MACHINE
    table = record_t
    audit_table = record_audit_t
    audit_subject = "record_id"
    label = "就业记录"
    guards = MappingProxyType({"destination_named": destination_named})
    effects = MappingProxyType(
        {"fix_destination": fix_destination, "note_destination": note_destination}
    )

    def load(
        self, conn: Connection, subject_id: int, *, today: dt.date, data: Mapping[str, Any]
    ) -> Loaded[RecordFacts] | None:
        row = conn.execute(_load, {"record_id": subject_id}).first()
        if row is None:
            return None
        facts = RecordFacts(row.id, row.unit_path, row.destination, data)
        return Loaded(row.id, row.state, row.version, row.audit_seq, row.audit_head, facts)

    def visible(self, actor: Actor, loaded: Loaded[RecordFacts]) -> bool:
        return actor.sees(loaded.facts.unit_path)


RECORDS = RecordNoun()
RECORDS.check_declaration()
serve("employment-records", RECORDS)
