"""Units submit reports (a district's statistics table): what `report_submitted` waits for."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from workflow.clock import Clock
from workflow.deadlines.models import ReportSubmission
from workflow.errors import Conflict, PermissionDenied, ValidationFailed
from workflow.roles import Actor, Grant
from workflow.units.models import Unit

report_t = ReportSubmission.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]


class ReportAlreadySubmitted(Conflict):
    code = "report_already_submitted"


def submit_report(
    conn: Connection,
    *,
    campaign_id: int,
    unit_code: str,
    kind: str,
    note: str | None,
    actor: Actor,
    clock: Clock,
    figures: dict[str, Any] | None = None,
) -> int:
    if not actor.may(Grant.SUBMIT_REPORT):
        raise PermissionDenied("当前角色无权报送")
    unit = conn.execute(
        select(unit_t.c.id, unit_t.c.path).where(unit_t.c.code == unit_code)
    ).first()
    if unit is None or not actor.sees(unit.path):
        raise ValidationFailed(
            f"单位 {unit_code} 不存在",
            [{"field": "unit", "code": "unknown_unit", "message": "单位不存在"}],
        )
    try:
        with conn.begin_nested():
            return int(
                conn.execute(
                    insert(report_t)
                    .values(
                        campaign_id=campaign_id,
                        unit_id=unit.id,
                        kind=kind,
                        note=note,
                        figures=figures or {},
                        submitted_by=actor.username,
                        submitted_at=clock.now(),
                    )
                    .returning(report_t.c.id)
                ).scalar_one()
            )
    except IntegrityError as exc:
        raise ReportAlreadySubmitted(
            f"{unit_code} 已报送过该报表", {"unit": unit_code, "kind": kind}
        ) from exc
