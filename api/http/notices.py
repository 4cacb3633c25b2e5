"""The in-app inbox, and for admins the outbox and the campaigns the last sweep failed for."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import select

from jinqiu.api.deps import Conn, CurrentActor, InboxItemInScope, ServicesDep, api_router, require
from jinqiu.api.errors import ERROR_RESPONSES
from jinqiu.notifications import inbox as inbox_reads
from jinqiu.notifications.models import InboxMessage, OutboxMessage, OutboxStatus
from jinqiu.workflow.campaigns.models import Campaign
from jinqiu.workflow.failures import SweepError
from jinqiu.workflow.roles import Actor, Grant
from jinqiu.workflow.units.models import Unit, in_subtree

router = api_router(tags=["notifications"], responses=ERROR_RESPONSES)
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
    read_at: dt.datetime | None = Field(description="the unit's first read (null: no one's yet)")
    read_by: str | None = Field(description="who in the unit read it first")
    read_by_me_at: dt.datetime | None = Field(
        description="when the caller read it (null: unread by the caller)"
    )


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
    return InboxItemOut(
        id=row.id,
        unit=row.unit_code,
        title=row.title,
        body=row.body,
        link=row.link,
        created_at=row.created_at,
        read_at=row.read_at,
        read_by=row.read_by,
        read_by_me_at=row.read_by_me_at,
    )


@router.get("/api/inbox", response_model=list[InboxItemOut])
def inbox(
    actor: CurrentActor,
    conn: Conn,
    unread: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[InboxItemOut]:
    """Notifications addressed to the caller's unit, newest first; `unread=true`: those the
    caller has not read (a colleague's read does not count)."""
    query = inbox_reads.items_with_my_read(actor.unit_code, actor.username)
    if unread:
        query = query.where(inbox_reads.read_t.c.read_at.is_(None))
    rows = conn.execute(query.order_by(inbox_t.c.id.desc()).limit(limit)).all()
    return [inbox_out(r) for r in rows]


@router.post("/api/inbox/{item_id}/read", response_model=InboxItemOut)
def mark_read(
    item: InboxItemInScope, actor: CurrentActor, svc: ServicesDep, conn: Conn
) -> InboxItemOut:
    """The caller's read of the item (again: nothing changes); the unit's first read if none."""
    inbox_reads.mark_read(conn, item.id, actor.username, svc.clock.now())
    query = inbox_reads.items_with_my_read(actor.unit_code, actor.username)
    return inbox_out(conn.execute(query.where(inbox_t.c.id == item.id)).one())


@router.get("/api/admin/outbox", response_model=list[OutboxItemOut])
def outbox(
    admin: Annotated[Actor, Depends(require(Grant.MANAGE_USERS))],
    conn: Conn,
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
    admin: Annotated[Actor, Depends(require(Grant.MANAGE_USERS))], conn: Conn
) -> list[SweepErrorOut]:
    """The campaigns the last scheduler sweep failed for (the others were swept), among those
    that concern the admin's unit; /api/health counts them all."""
    query = (
        select(sweep_error_t, unit_t.c.path.label("organizer_path"))
        .select_from(
            sweep_error_t.outerjoin(
                campaign_t, campaign_t.c.id == sweep_error_t.c.campaign_id
            ).outerjoin(unit_t, unit_t.c.id == campaign_t.c.organizer_unit_id)
        )
        .order_by(sweep_error_t.c.id)
    )
    rows = conn.execute(query).all()
    return [
        SweepErrorOut(
            campaign=r.campaign_id,
            campaign_name=r.campaign_name,
            stage=r.stage,
            error=r.error,
            failures=r.failures,
            first_failed_at=r.first_failed_at,
            last_failed_at=r.last_failed_at,
        )
        for r in rows
        if r.organizer_path is None or admin.concerned_by(r.organizer_path)
    ]
