"""The in-app inbox, the reports deadlines wait for, and the outbox for admins."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import select, update

from jinqiu.api.deps import CurrentActor, ServicesDep, require
from jinqiu.api.errors import ERROR_RESPONSES
from jinqiu.api.http.campaigns import campaign_in_scope, concerns
from jinqiu.api.http.schemas import PathId, Strict
from jinqiu.notifications.models import InboxMessage, OutboxMessage, OutboxStatus
from jinqiu.workflow.campaigns.models import Campaign
from jinqiu.workflow.db import transaction
from jinqiu.workflow.deadlines.failures import SweepError
from jinqiu.workflow.deadlines.reports import report_revisions, submit_report
from jinqiu.workflow.errors import NotFound
from jinqiu.workflow.roles import Actor, Grant
from jinqiu.workflow.units.models import Unit, in_subtree

router = APIRouter(tags=["notifications"], responses=ERROR_RESPONSES)
inbox_t = InboxMessage.__table__  # type: ignore[attr-defined]
outbox_t = OutboxMessage.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
campaign_t = Campaign.__table__  # type: ignore[attr-defined]
sweep_error_t = SweepError.__table__  # type: ignore[attr-defined]


class InboxItemOut(BaseModel):
    id: int
    unit: str
    title: str
    body: str
    link: str | None
    created_at: dt.datetime
    read_at: dt.datetime | None
    read_by: str | None


class ReportIn(Strict):
    unit: str = Field(min_length=1, max_length=64)
    kind: str = Field(
        default="statistics", pattern=r"^[a-z_]{1,32}$",
        description="statistics, demand_summary, interim, or a report the campaign's deadlines name",
    )
    note: str | None = Field(default=None, max_length=2000)
    # Checked item by item against the kind's declaration (workflow.deadlines.reports), so each
    # refusal names its item: unknown items, wrong types and out-of-range values are 422.
    figures: dict[str, Any] = Field(
        default_factory=dict,
        description="figures no case records, by item code (e.g. H, I; employment.06A or "
        "{\"employment\": {\"06A\": …}}): counts as integers 0…10,000,000, money (万元, 元) "
        "as decimal strings or integers, not negative",
    )


class ReportOut(BaseModel):
    id: int
    campaign: int
    unit: str
    kind: str
    revision: int = Field(description="1 for the first filing; each resubmission is the next")


class ReportRevisionOut(BaseModel):
    id: int
    unit: str
    kind: str
    revision: int
    latest: bool
    note: str | None
    figures: dict[str, Any]
    submitted_by: str
    submitted_at: dt.datetime


class OutboxItemOut(BaseModel):
    id: int
    idempotency_key: str
    channel: str
    recipient: str
    subject: str
    status: str
    attempts: int
    next_attempt_at: dt.datetime
    last_error: str | None
    created_at: dt.datetime
    sent_at: dt.datetime | None


def inbox_out(row: Any) -> InboxItemOut:
    return InboxItemOut(id=row.id, unit=row.unit_code, title=row.title, body=row.body,
                        link=row.link, created_at=row.created_at, read_at=row.read_at,
                        read_by=row.read_by)


@router.get("/api/inbox", response_model=list[InboxItemOut])
def inbox(
    actor: CurrentActor,
    svc: ServicesDep,
    unread: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[InboxItemOut]:
    """Notifications addressed to the caller's unit, newest first."""
    query = select(inbox_t).where(inbox_t.c.unit_code == actor.unit_code)
    if unread:
        query = query.where(inbox_t.c.read_at.is_(None))
    with svc.engine.connect() as conn:
        rows = conn.execute(query.order_by(inbox_t.c.id.desc()).limit(limit)).all()
    return [inbox_out(r) for r in rows]


@router.post("/api/inbox/{item_id}/read", response_model=InboxItemOut)
def mark_read(item_id: PathId, actor: CurrentActor, svc: ServicesDep) -> InboxItemOut:
    with transaction(svc.engine) as conn:
        row = conn.execute(
            select(inbox_t).where(inbox_t.c.id == item_id, inbox_t.c.unit_code == actor.unit_code)
        ).first()
        if row is None:
            raise NotFound(f"通知 {item_id} 不存在")
        if row.read_at is None:
            conn.execute(
                update(inbox_t)
                .where(inbox_t.c.id == item_id)
                .values(read_at=svc.clock.now(), read_by=actor.username)
            )
        row = conn.execute(select(inbox_t).where(inbox_t.c.id == item_id)).one()
    return inbox_out(row)


@router.post("/api/campaigns/{campaign_id}/reports", status_code=201, response_model=ReportOut)
def report(campaign_id: PathId, body: ReportIn, actor: CurrentActor, svc: ServicesDep) -> ReportOut:
    """Files a report; filing the same kind again is its next revision (the latest counts)."""
    with transaction(svc.engine) as conn:
        campaign_in_scope(conn, campaign_id, actor)
        filed = submit_report(
            conn,
            campaign_id=campaign_id,
            unit_code=body.unit,
            kind=body.kind,
            note=body.note,
            actor=actor,
            clock=svc.clock,
            figures=body.figures,
        )
    return ReportOut(id=filed.id, campaign=campaign_id, unit=body.unit, kind=body.kind,
                     revision=filed.revision)


@router.get("/api/campaigns/{campaign_id}/reports", response_model=list[ReportRevisionOut])
def reports(
    campaign_id: PathId, actor: CurrentActor, svc: ServicesDep,
    unit: Annotated[str | None, Query(max_length=64)] = None,
    kind: Annotated[str | None, Query(pattern=r"^[a-z_]{1,32}$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ReportRevisionOut]:
    """Every revision of the reports of the caller's subtree (or of `unit`'s), newest first."""
    with svc.engine.connect() as conn:
        campaign_in_scope(conn, campaign_id, actor)
        path = actor.unit_path
        if unit is not None:
            row = conn.execute(select(unit_t.c.path).where(unit_t.c.code == unit)).first()
            if row is None or not actor.sees(row.path):
                raise NotFound(f"单位 {unit} 不存在")
            path = row.path
        rows = report_revisions(conn, campaign_id, path, kind=kind, limit=limit)
    return [ReportRevisionOut(**r) for r in rows]


@router.get("/api/admin/outbox", response_model=list[OutboxItemOut])
def outbox(
    admin: Annotated[Actor, Depends(require(Grant.MANAGE_USERS))],
    svc: ServicesDep,
    status: OutboxStatus | None = OutboxStatus.FAILED,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[OutboxItemOut]:
    """Messages to contacts inside the admin's subtree, by delivery status (default: the failed
    ones, after their last retry)."""
    query = (
        select(outbox_t)
        .join(unit_t, unit_t.c.code == outbox_t.c.unit_code)
        .where(in_subtree(unit_t.c.path, admin.unit_path))
    )
    if status is not None:
        query = query.where(outbox_t.c.status == status.value)
    with svc.engine.connect() as conn:
        rows = conn.execute(query.order_by(outbox_t.c.id.desc()).limit(limit)).all()
    return [OutboxItemOut(**{k: getattr(r, k) for k in OutboxItemOut.model_fields}) for r in rows]


class SweepErrorOut(BaseModel):
    campaign: int | None = Field(description="the campaign; null when the sweep as a whole failed")
    campaign_name: str
    stage: str
    error: str
    failures: int = Field(description="consecutive sweeps that failed for it")
    first_failed_at: dt.datetime
    last_failed_at: dt.datetime


@router.get("/api/admin/sweep-errors", response_model=list[SweepErrorOut])
def sweep_errors(
    admin: Annotated[Actor, Depends(require(Grant.MANAGE_USERS))], svc: ServicesDep
) -> list[SweepErrorOut]:
    """The campaigns the last scheduler sweep failed for (the others were swept), among those
    that concern the admin's unit; /api/health counts them all."""
    query = (
        select(sweep_error_t, unit_t.c.path.label("organizer_path"))
        .select_from(
            sweep_error_t.outerjoin(campaign_t, campaign_t.c.id == sweep_error_t.c.campaign_id)
            .outerjoin(unit_t, unit_t.c.id == campaign_t.c.organizer_unit_id)
        )
        .order_by(sweep_error_t.c.id)
    )
    with svc.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        SweepErrorOut(campaign=r.campaign_id, campaign_name=r.campaign_name, stage=r.stage,
                      error=r.error, failures=r.failures, first_failed_at=r.first_failed_at,
                      last_failed_at=r.last_failed_at)
        for r in rows
        if r.organizer_path is None or concerns(admin, r.organizer_path)
    ]
