"""The one code path that shows a case's personal numbers, on every face (the API, the pages, the
history). A role without pii.read gets them masked (workflow.masking); a pii.read holder gets them
in full, and every such read writes a pii_access row — in the same transaction as the read, so
nothing unmasked leaves without its record. Stored audit rows are never rewritten: history is
masked as it is read, so the hash chain stays verifiable."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, insert, select

from jinqiu.workflow.audit.models import PiiAccess
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.cases.reads import case_detail, in_scope
from jinqiu.workflow.cases.service import case_history
from jinqiu.workflow.clock import Clock
from jinqiu.workflow.errors import NotFound, PermissionDenied
from jinqiu.workflow.masking import has_number, is_pii_field, mask_value, masked_text
from jinqiu.workflow.roles import Actor, Grant
from jinqiu.workflow.units.models import Unit

pii_t = PiiAccess.__table__  # type: ignore[attr-defined]
case_t = Case.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
PURPOSE_MAX = 64  # pii_access.purpose


@dataclass
class Disclosure:
    """What one read shows of personal numbers, and which of them it showed in full."""

    in_full: bool
    revealed: list[str] = field(default_factory=list)

    @classmethod
    def for_actor(cls, actor: Actor) -> Disclosure:
        return cls(in_full=actor.may(Grant.READ_PII))

    def _shown(self, path: str) -> None:
        if path not in self.revealed:
            self.revealed.append(path)

    def data(self, value: Any, path: str = "") -> Any:
        """JSON-like data (a case row, an audit entry's data): PII fields by name, and numbers
        typed into strings, masked — or kept and noted as revealed."""
        if isinstance(value, dict):
            out: dict[Any, Any] = {}
            for key, item in value.items():
                inner = f"{path}.{key}" if path else str(key)
                if is_pii_field(inner) and item not in (None, "", {}, []):
                    out[key] = self._field(inner, item)
                else:
                    out[key] = self.data(item, inner)
            return out
        if isinstance(value, list):
            return [self.data(item, path) for item in value]
        if isinstance(value, str):
            return self.text(value, path)
        return value

    def _field(self, path: str, value: Any) -> Any:
        if self.in_full:
            self._shown(_named(path))
            return value
        return mask_value(path, value)

    def text(self, value: str, path: str) -> str:
        if not has_number(value):
            return value
        if self.in_full:
            self._shown(_named(path))
            return value
        return masked_text(value)

    def record(
        self, conn: Connection, case_id: int, actor: Actor, purpose: str, at: dt.datetime
    ) -> None:
        """A pii_access row for what this read showed in full (none when nothing was)."""
        if not self.revealed:
            return
        conn.execute(
            insert(pii_t).values(
                case_id=case_id,
                actor=actor.username,
                actor_unit=actor.unit_code,
                fields=list(self.revealed),
                purpose=purpose[:PURPOSE_MAX],
                at=at,
            )
        )


def _named(path: str) -> str:
    """`history.3.data.changes.worker.bank_card_number` → `worker.bank_card_number`; the
    case row's copy of the student number is the student's number."""
    for prefix in ("detail.", "history."):
        if path.startswith(prefix):
            path = path[len(prefix) :]
    parts = path.split(".")
    if parts and parts[0].isdigit():  # the history entry's position
        parts = parts[1:]
    if parts[:2] == ["data", "changes"]:
        parts = parts[2:]
    elif parts[:1] == ["data"]:
        parts = parts[1:]
    named = ".".join(parts)
    return "student.id_number" if named == "case.student_id_number" else named


@dataclass(frozen=True)
class CaseView:
    """One case as the caller may see it: the detail and/or the history."""

    in_full: bool
    detail: dict[str, Any] | None = None
    history: list[dict[str, Any]] | None = None


def view_case(
    conn: Connection,
    case_id: int,
    actor: Actor,
    *,
    purpose: str,
    clock: Clock,
    detail: bool = True,
    history: bool = False,
) -> CaseView:
    """The case (detail, history or both) for the caller, masked unless they hold pii.read; an
    unmasked read is recorded on `conn`, in the transaction of the read itself, so the caller
    commits both or neither (for a pii.read holder `conn` must be a writing transaction).
    Outside the caller's subtree → NotFound."""
    disclosure = Disclosure.for_actor(actor)
    now = clock.now()
    shown_detail = shown_history = None
    if detail:
        raw = case_detail(conn, case_id, actor, today=now.date())
        shown_detail = disclosure.data({k: raw[k] for k in ("case", "worker", "student")}, "detail")
        shown_detail.update({k: v for k, v in raw.items() if k not in shown_detail})
    else:
        _check_visible(conn, case_id, actor)
    if history:
        shown_history = [
            {
                **entry,
                "opinion": disclosure.data(entry["opinion"], f"history.{i}.opinion"),
                "data": disclosure.data(entry["data"], f"history.{i}.data"),
            }
            for i, entry in enumerate(case_history(conn, case_id))
        ]
    disclosure.record(conn, case_id, actor, purpose, now)
    return CaseView(in_full=disclosure.in_full, detail=shown_detail, history=shown_history)


def _check_visible(conn: Connection, case_id: int, actor: Actor) -> None:
    visible = conn.execute(
        in_scope(
            select(case_t.c.id)
            .join(unit_t, unit_t.c.id == case_t.c.unit_id)
            .where(case_t.c.id == case_id),
            actor,
        )
    ).first()
    if visible is None:
        raise NotFound(f"案件 {case_id} 不存在")


def access_log(
    conn: Connection, actor: Actor, *, case_id: int | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The record of full reads (pii_access) of the cases — and survey register rows without a
    case — in the actor's subtree, or of one case, newest first: who saw which numbers of what,
    when, and through what. It names fields, never their values, so reading it is not itself a
    read of numbers."""
    if not actor.may(Grant.READ_AUDIT):
        raise PermissionDenied("当前角色无权查看审计记录", {"permission": Grant.READ_AUDIT.value})
    # A row names a case or a register row (a CHECK holds exactly one): its unit is that one's.
    # The register's table through the foreign key: workflow.survey imports cases, not back.
    (entry_fk,) = pii_t.c.survey_entry_id.foreign_keys
    entry_t = entry_fk.column.table
    query = in_scope(
        select(pii_t)
        .outerjoin(case_t, case_t.c.id == pii_t.c.case_id)
        .outerjoin(entry_t, entry_t.c.id == pii_t.c.survey_entry_id)
        .join(unit_t, unit_t.c.id == func.coalesce(case_t.c.unit_id, entry_t.c.unit_id)),
        actor,
    )
    if case_id is not None:
        query = query.where(pii_t.c.case_id == case_id)
    rows = conn.execute(query.order_by(pii_t.c.id.desc()).limit(limit)).all()
    return [
        {
            "id": r.id,
            "case": r.case_id,
            "survey_entry_id": r.survey_entry_id,
            "actor": r.actor,
            "actor_unit": r.actor_unit,
            "fields": list(r.fields),
            "purpose": r.purpose,
            "at": r.at,
        }
        for r in rows
    ]
