"""Publicity lists (公示名单) and objections (异议): build a draft from a unit's cases waiting for
publicity, publish it, read it (JSON, or the printable notice as HTML or PDF), withdraw it,
record objections and resolve them. The list's end is the sweep's."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from jinqiu.api.deps import (
    Conn,
    PublicityListInScope,
    ServicesDep,
    api_router,
    campaign_in_scope,
    in_handler,
    objection_in_scope,
    publicity_list_in_scope,
    require,
    unit_named,
)
from jinqiu.api.errors import ERROR_RESPONSES
from jinqiu.api.http.schemas import Strict
from jinqiu.api.printing import notice_html, notice_pdf
from jinqiu.states import Permission
from jinqiu.states.publicity_list import ListState
from jinqiu.workflow.errors import NotFound, ValidationFailed
from jinqiu.workflow.publicity_lists import service
from jinqiu.workflow.publicity_lists.engine import OPEN
from jinqiu.workflow.publicity_lists.reads import list_view
from jinqiu.workflow.roles import Actor
from jinqiu.workflow.validation import DbId

router = api_router(tags=["publicity lists"], responses=ERROR_RESPONSES)
Reviewers = Annotated[Actor, Depends(require(Permission.REVIEW_CASE, "当前角色无权办理公示"))]


class ListIn(Strict):
    unit: str = Field(min_length=1, max_length=64)
    case_ids: list[DbId] | None = Field(
        default=None,
        min_length=1,
        max_length=service.MAX_CASES,
        description="without it: every case of the unit's subtree waiting for publicity",
    )
    starts_on: dt.date | None = Field(
        default=None, description="the first day on display (default: the day it is published)"
    )
    working_days: int | None = Field(
        default=None,
        ge=1,
        le=service.MAX_WORKING_DAYS,
        description="default: the campaign's publicity_working_days",
    )


class ListOut(BaseModel):
    id: int
    unit: str
    status: ListState
    version: int
    case_ids: list[int]
    starts_on: dt.date | None
    ends_on: dt.date | None = Field(description="the last day of publicity, inclusive")
    working_days: int


class ListRow(BaseModel):
    case_id: int
    name: str = Field(description="given name masked: 张*明")
    school: str
    education_level: str
    amount: str | None = Field(description="yuan, as the campaign's rules give it")


class ObjectionOut(BaseModel):
    id: int
    case_id: int
    objector: str
    received_on: dt.date
    status: str = Field(description="open, upheld or dismissed")
    reason: str | None


class ListDetail(ListOut):
    rows: list[ListRow]
    objections: list[ObjectionOut]


class WithdrawIn(Strict):
    reason: str = Field(min_length=1, max_length=2000)


class ObjectionIn(Strict):
    case_id: DbId
    objector: str = Field(min_length=1, max_length=50)
    contact: str = Field(min_length=1, max_length=100)
    content: str = Field(min_length=1, max_length=2000)
    received_on: dt.date | None = Field(default=None, description="default: today")


class ObjectionCreated(BaseModel):
    id: int
    status: str


class ResolveIn(Strict):
    outcome: Literal["upheld", "dismissed"]
    reason: str = Field(min_length=1, max_length=2000)


class Resolved(BaseModel):
    id: int
    status: str
    case_id: int
    case_state: str


def _out(view: dict[str, Any], model: type[ListOut] = ListOut) -> Any:
    return model.model_validate(view)


@router.post(
    "/api/campaigns/{campaign_id}/publicity-lists", status_code=201, response_model=ListOut
)
def build(
    actor: Reviewers,
    campaign: Annotated[Any, Depends(in_handler(campaign_in_scope))],
    body: ListIn,
    svc: ServicesDep,
    conn: Conn,
) -> Any:
    """A draft list of the unit's cases waiting for publicity (all of them, or those named)."""
    try:
        unit = unit_named(conn, body.unit, actor)
    except NotFound:  # named in the body of a create: 422 naming the field, as everywhere
        raise ValidationFailed(
            f"单位 {body.unit} 不存在",
            [{"field": "unit", "code": "unknown_unit", "message": "单位不存在"}],
        ) from None
    list_id = service.build_list(
        conn,
        campaign_id=campaign.id,
        unit=unit,
        actor=actor,
        clock=svc.clock,
        case_ids=body.case_ids,
        starts_on=body.starts_on,
        working_days=body.working_days,
    )
    return _out(list_view(conn, list_id, today=svc.clock.now().date()))


@router.post("/api/publicity-lists/{list_id}/publish", response_model=ListOut)
def publish(actor: Reviewers, list_id: PublicityListInScope, svc: ServicesDep, conn: Conn) -> Any:
    """Publishes a draft: its period fixed (working days, holidays skipped), its cases into
    publicity together."""
    service.publish_list(conn, list_id, actor=actor, clock=svc.clock)
    return _out(list_view(conn, list_id, today=svc.clock.now().date()))


@router.post("/api/publicity-lists/{list_id}/withdraw", response_model=ListOut)
def withdraw(
    actor: Reviewers,
    list_id: Annotated[int, Depends(in_handler(publicity_list_in_scope))],
    body: WithdrawIn,
    svc: ServicesDep,
    conn: Conn,
) -> Any:
    """Withdraws a draft or published list (not while an objection is open); a published
    list's cases wait for another list."""
    service.withdraw_list(conn, list_id, reason=body.reason, actor=actor, clock=svc.clock)
    return _out(list_view(conn, list_id, today=svc.clock.now().date()))


@router.get(
    "/api/publicity-lists/{list_id}",
    response_model=ListDetail,
    responses={200: {"content": {"text/html": {}, "application/pdf": {}}}},
)
def read(
    list_id: PublicityListInScope,
    svc: ServicesDep,
    conn: Conn,
    format: Annotated[Literal["json", "html", "pdf"], Query()] = "json",
) -> Any:
    """The list: JSON, or the printable A4 notice (`html`, `pdf`); given names masked."""
    today = svc.clock.now().date()
    view = list_view(conn, list_id, today=today)
    if format == "html":
        return HTMLResponse(notice_html(view, today))
    if format == "pdf":
        return Response(
            notice_pdf(view, today),
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="publicity-list-{list_id}.pdf"'},
        )
    return _out(view, ListDetail)


@router.post(
    "/api/publicity-lists/{list_id}/objections",
    status_code=201,
    response_model=ObjectionCreated,
)
def record_objection(
    actor: Reviewers,
    list_id: Annotated[int, Depends(in_handler(publicity_list_in_scope))],
    body: ObjectionIn,
    svc: ServicesDep,
    conn: Conn,
) -> ObjectionCreated:
    """异议 against a case of a published list; the list cannot end while it is open."""
    objection_id = service.record_objection(
        conn,
        list_id,
        case_id=body.case_id,
        objector=body.objector,
        contact=body.contact,
        content=body.content,
        received_on=body.received_on,
        actor=actor,
        clock=svc.clock,
    )
    return ObjectionCreated(id=objection_id, status=OPEN)


@router.post("/api/objections/{objection_id}/resolve", response_model=Resolved)
def resolve(
    actor: Reviewers,
    objection_id: Annotated[int, Depends(in_handler(objection_in_scope))],
    body: ResolveIn,
    svc: ServicesDep,
    conn: Conn,
) -> Resolved:
    """Upheld: the case is rejected (the reason quoted); dismissed: it goes on."""
    found = service.objection_in_scope(conn, objection_id, actor)
    state = service.resolve_objection(
        conn, objection_id, outcome=body.outcome, reason=body.reason, actor=actor, clock=svc.clock
    )
    return Resolved(id=objection_id, status=body.outcome, case_id=found.case_id, case_state=state)
